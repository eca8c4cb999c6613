"""Optimizers and learning-rate schedules from the config (optax).

The paper's update rule (Krizhevsky et al. 2012, Sec. 5) is

    v ← 0.9·v − 0.0005·ε·w − ε·∂L/∂w,        w ← w + v

i.e. weight decay is added to the gradient, the sum is scaled by the learning rate ε,
and only then accumulated into the momentum buffer. `sgd` below is exactly that chain:
add_decayed_weights → scale by −ε → trace(momentum). (optax.sgd applies ε after the
momentum, which differs from the paper whenever ε changes.)

The reduce-on-plateau rule can count in training steps instead of evaluations
(`schedule.patience_steps`, `schedule.first_cut_step`): on a small dataset an epoch is a few dozen
steps, and a patience of a few epochs would cut the rate long before the net has had the
thousands of steps it gets per epoch on ImageNet (configs/alexnet.py, `small`).

The learning rate is an injected hyper-parameter (`optax.inject_hyperparams`): the train
step writes `schedule(step) × plateau scale` into the optimizer state before each update,
so schedules, the reduce-on-plateau state and the rate actually used are all in the
checkpoint and in the logs.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from alexnet_jax.errors import ConfigError

Schedule = Callable[[jax.Array], jax.Array]


def decay_mask(params, decay_all: bool):
  """True for leaves that get weight decay: everything (the paper) or only kernels (ndim > 1)."""
  return jax.tree.map(lambda p: True if decay_all else p.ndim > 1, params)


def make_optimizer(cfg, params) -> optax.GradientTransformation:
  """`cfg` is config.optimizer. The learning rate starts at 0 and is set by the train step."""
  mask = decay_mask(params, cfg.decay_biases_and_norms)

  def factory(learning_rate):
    parts = []
    if cfg.grad_clip_norm > 0:
      parts.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
    if cfg.name == "sgd":
      if cfg.weight_decay > 0:
        parts.append(optax.add_decayed_weights(cfg.weight_decay, mask))
      parts.append(optax.scale_by_learning_rate(learning_rate))
      if cfg.momentum > 0:
        parts.append(optax.trace(decay=cfg.momentum, nesterov=cfg.nesterov))
    elif cfg.name == "adamw":
      parts.append(optax.adamw(learning_rate, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.eps,
                               weight_decay=cfg.weight_decay, mask=mask))
    elif cfg.name == "rmsprop":
      if cfg.weight_decay > 0:
        parts.append(optax.add_decayed_weights(cfg.weight_decay, mask))
      parts.append(optax.rmsprop(learning_rate, decay=0.9, eps=cfg.eps, momentum=cfg.momentum))
    else:
      raise ConfigError(f"config.optimizer.name={cfg.name!r} is not known; choose sgd, adamw or rmsprop.")
    return optax.chain(*parts)

  return optax.inject_hyperparams(factory)(learning_rate=0.0)


def guarded_update(tx: optax.GradientTransformation, grads, opt_state, params, loss: jax.Array):
  """One optimizer step, made only if the loss and gradient are finite. Returns (params, opt_state,
  finite, grad_norm).

  When the loss or the gradient's global norm is not finite the old parameters and optimizer
  state come back unchanged. Otherwise the update is made, in place, and `finite` also says
  whether every new parameter is finite (a finite gradient times a huge learning rate can still
  overflow): XLA reads the new parameters for that check in the pass that writes them. Such an
  overflowing step *is* applied, so a caller must check `finite` before it saves or evaluates
  the state (train.py stops with the last good checkpoint kept).

  Checking the new parameters before the update instead costs a second pass over parameters,
  gradients and optimizer state (12% of an AlexNet OWT step on a 2-core CPU), and choosing
  elementwise between a stored old and new state keeps both alive, so the update cannot
  overwrite the donated buffers in place (BENCHMARKS.md).
  """
  grad_norm = optax.tree.norm(grads)

  def step(_):
    updates, new_opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    finite = jax.tree.reduce(jnp.logical_and, jax.tree.map(lambda p: jnp.isfinite(p).all(), new_params),
                             jnp.array(True))
    return new_params, new_opt_state, finite

  new_params, new_opt_state, finite = jax.lax.cond(
      jnp.isfinite(loss) & jnp.isfinite(grad_norm), step, lambda _: (params, opt_state, jnp.array(False)), None)
  return new_params, new_opt_state, finite, grad_norm


def make_schedule(cfg, steps_per_epoch: int, total_steps: int) -> Schedule:
  """`cfg` is config.schedule; returns step → learning rate (before any plateau scaling)."""
  base = cfg.base_lr
  warmup = cfg.warmup_steps or int(round(cfg.warmup_epochs * steps_per_epoch))
  if cfg.name in ("plateau", "constant"):
    main = optax.constant_schedule(base)
  elif cfg.name == "step":
    bounds = {int(round(e * steps_per_epoch)) - warmup: cfg.factor for e in cfg.step_epochs}
    main = optax.piecewise_constant_schedule(base, {b: f for b, f in bounds.items() if b > 0})
  elif cfg.name == "cosine":
    main = optax.cosine_decay_schedule(base, max(1, total_steps - warmup))
  elif cfg.name == "poly":
    main = optax.polynomial_schedule(base, 0.0, cfg.poly_power, max(1, total_steps - warmup))
  else:
    raise ConfigError(
        f"config.schedule.name={cfg.name!r} is not known; choose plateau, step, cosine, poly or constant.")
  if warmup > 0:
    return optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])
  return main


def make_plateau(cfg, patience: int | None = None) -> optax.GradientTransformationExtraArgs:
  """Reduce-on-plateau on the validation error; at most `max_reductions` drops by `factor`.

  `patience` (evaluations without improvement before a drop) defaults to `cfg.patience`."""
  return optax.contrib.reduce_on_plateau(
      factor=cfg.factor,
      patience=cfg.patience if patience is None else patience,
      rtol=cfg.min_delta,
      atol=0.0,
      cooldown=cfg.cooldown,
      accumulation_size=1,
      min_scale=cfg.factor ** cfg.max_reductions if cfg.name == "plateau" else 1.0,
  )


def plateau_init(cfg):
  return make_plateau(cfg).init({"lr": jnp.zeros((), jnp.float32)})


def plateau_patience(cfg, eval_every: int) -> int:
  """Evaluations without improvement before a drop: `patience_steps` turned into evaluations of
  `eval_every` steps each (rounded up), or `patience` (already in evaluations) when it is 0."""
  if cfg.patience_steps > 0:
    return max(1, -(-cfg.patience_steps // max(1, eval_every)))
  return cfg.patience


def plateau_watch_from(cfg, eval_every: int) -> int:
  """The first step whose evaluation the rule reads. The first evaluation it reads sets its best
  value and a drop needs `patience` more without improvement, so starting `patience` evaluations
  before `first_cut_step` makes that step the earliest drop."""
  return max(0, cfg.first_cut_step - plateau_patience(cfg, eval_every) * max(1, eval_every))


def plateau_update(cfg, plateau_state, val_error: float, step: int | None = None, eval_every: int = 1):
  """Feeds the validation error measured at `step` (evaluations every `eval_every` steps) to the
  plateau logic; returns the new state (scale inside). Evaluations before `plateau_watch_from`
  are not read; without `step` every evaluation is read and patience counts evaluations."""
  if cfg.name != "plateau":
    return plateau_state
  if step is None:
    patience = cfg.patience
  elif step < plateau_watch_from(cfg, eval_every):
    return plateau_state
  else:
    patience = plateau_patience(cfg, eval_every)
  _, new_state = make_plateau(cfg, patience).update({"lr": jnp.zeros((), jnp.float32)}, plateau_state,
                                                    value=jnp.asarray(val_error, jnp.float32))
  return new_state


def steps_for(num_examples: int, batch_size: int, num_epochs: float) -> tuple[int, int]:
  """(steps per epoch, total steps) for a dataset size, global batch and epoch count."""
  per_epoch = max(1, num_examples // batch_size)
  return per_epoch, max(1, int(math.ceil(num_epochs * per_epoch)))
