"""Learning-rate schedules, reduce-on-plateau, the weight-decay mask and the guarded update (alexnet_jax/optim.py)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from alexnet_jax import optim
from alexnet_jax.configs import common
from alexnet_jax.errors import ConfigError


def _schedule(**fields) -> ml_collections.ConfigDict:
  c = common.base_config().schedule
  c.update(fields)
  return c


def _values(schedule, steps):
  return np.array([float(schedule(jnp.asarray(s))) for s in steps])


def test_step_schedule_multiplies_by_factor_at_each_boundary():
  cfg = _schedule(name="step", base_lr=0.1, factor=0.1, step_epochs=(2.0, 4.0))
  s = optim.make_schedule(cfg, steps_per_epoch=10, total_steps=60)
  np.testing.assert_allclose(_values(s, [0, 19, 20, 39, 40, 59]), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
                             rtol=1e-6)


def test_warmup_is_linear_from_zero_then_the_main_schedule_starts():
  cfg = _schedule(name="cosine", base_lr=0.4, warmup_epochs=1.0)
  s = optim.make_schedule(cfg, steps_per_epoch=10, total_steps=110)
  np.testing.assert_allclose(_values(s, [0, 5, 10]), [0.0, 0.2, 0.4], rtol=1e-6)
  # After warm-up: cosine over the remaining 100 steps, half-way at step 60, zero at the end.
  np.testing.assert_allclose(_values(s, [60, 110]), [0.2, 0.0], atol=1e-6)


def test_cosine_and_poly_follow_their_formulas():
  total = 50
  cos = optim.make_schedule(_schedule(name="cosine", base_lr=1.0), 10, total)
  steps = np.arange(0, total + 1, 5)
  np.testing.assert_allclose(_values(cos, steps), 0.5 * (1 + np.cos(np.pi * steps / total)), atol=1e-6)
  poly = optim.make_schedule(_schedule(name="poly", base_lr=1.0, poly_power=0.5), 10, total)
  np.testing.assert_allclose(_values(poly, steps), (1 - steps / total) ** 0.5, atol=1e-6)


def test_constant_and_plateau_schedules_are_flat():
  for name in ("constant", "plateau"):
    s = optim.make_schedule(_schedule(name=name, base_lr=0.01), 10, 100)
    np.testing.assert_allclose(_values(s, [0, 50, 99]), 0.01, rtol=1e-6)


def test_unknown_schedule_is_a_config_error():
  with pytest.raises(ConfigError, match="schedule.name"):
    optim.make_schedule(_schedule(name="linear"), 10, 100)


def _plateau_scales(cfg, errors):
  state = optim.plateau_init(cfg)
  scales = []
  for e in errors:
    state = optim.plateau_update(cfg, state, e)
    scales.append(float(state.scale))
  return scales, state


def test_plateau_divides_by_ten_after_patience_and_at_most_three_times():
  cfg = _schedule(name="plateau", patience=2, factor=0.1, max_reductions=3, min_delta=1e-3, cooldown=0)
  # Improves for three evaluations, then stalls: the rate drops after `patience` evaluations
  # without improvement, then again after each further `patience`, three drops at most.
  errors = [0.9, 0.8, 0.7] + [0.7] * 12
  scales, _ = _plateau_scales(cfg, errors)
  assert scales[:3] == [1.0, 1.0, 1.0]
  drops = [i for i in range(1, len(scales)) if scales[i] < scales[i - 1]]
  assert len(drops) == 3, scales
  assert drops[0] == 3 + cfg.patience - 1, scales
  np.testing.assert_allclose(scales[-1], 1e-3, rtol=1e-5)
  assert all(np.isclose(scales[d] / scales[d - 1], 0.1, rtol=1e-5) for d in drops)


def test_plateau_does_not_drop_while_error_improves():
  cfg = _schedule(name="plateau", patience=1)
  scales, _ = _plateau_scales(cfg, np.linspace(0.9, 0.3, 10))
  assert scales == [1.0] * 10


def test_plateau_state_restored_mid_run_continues_identically():
  """The plateau state is part of the train state: resuming it gives the same later drops."""
  cfg = _schedule(name="plateau", patience=2)
  errors = [0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
  full, _ = _plateau_scales(cfg, errors)
  first, state = _plateau_scales(cfg, errors[:4])
  # A checkpoint round trip is a copy of the pytree's arrays.
  state = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), state)
  rest = []
  for e in errors[4:]:
    state = optim.plateau_update(cfg, state, e)
    rest.append(float(state.scale))
  assert first + rest == full


def test_other_schedules_ignore_the_plateau():
  cfg = _schedule(name="cosine")
  scales, _ = _plateau_scales(cfg, [0.5] * 10)
  assert scales == [1.0] * 10


def test_decay_mask_paper_decays_everything_otherwise_only_kernels():
  params = {"conv": {"kernel": jnp.ones((3, 3, 3, 8)), "bias": jnp.ones((8,))},
            "bn": {"scale": jnp.ones((8,)), "bias": jnp.zeros((8,))}}
  assert all(jax.tree.leaves(optim.decay_mask(params, True)))
  mask = optim.decay_mask(params, False)
  assert mask["conv"]["kernel"] is True
  assert mask["conv"]["bias"] is False and mask["bn"]["scale"] is False and mask["bn"]["bias"] is False


def test_masked_weight_decay_leaves_biases_alone():
  """With decay_biases_and_norms=False a zero gradient moves kernels (decay) but not biases."""
  cfg = common.base_config().optimizer
  cfg.decay_biases_and_norms = False
  params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
  tx = optim.make_optimizer(cfg, params)
  state = tx.init(params)
  state.hyperparams["learning_rate"] = jnp.asarray(0.1)
  zeros = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros((2,))}
  updates, _ = tx.update(zeros, state, params)
  np.testing.assert_allclose(updates["kernel"], -0.1 * 5e-4, rtol=1e-6)
  np.testing.assert_allclose(updates["bias"], 0.0)


def test_steps_for_rounds_epochs_up_and_never_returns_zero():
  assert optim.steps_for(1000, 128, 2.5) == (7, 18)
  assert optim.steps_for(10, 128, 1.0) == (1, 1)


def _sgd(lr):
  return optax.chain(optax.add_decayed_weights(5e-4), optax.scale_by_learning_rate(lr), optax.trace(decay=0.9))


def _guard_case():
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(64, 32)).astype(np.float32)), "b": jnp.zeros(32)}
  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape).astype(np.float32)), params)
  return params, grads


def test_guarded_update_applies_a_finite_step_as_optax_does():
  params, grads = _guard_case()
  tx = _sgd(0.1)
  opt_state = tx.init(params)
  new_params, new_opt_state, finite, grad_norm = jax.jit(
      lambda g, o, p: optim.guarded_update(tx, g, o, p, jnp.float32(1.0)))(grads, opt_state, params)
  updates, want_opt_state = tx.update(grads, opt_state, params)
  assert bool(finite)
  np.testing.assert_allclose(grad_norm, optax.tree.norm(grads), rtol=1e-6)
  np.testing.assert_allclose(new_params["w"], optax.apply_updates(params, updates)["w"], rtol=1e-6)
  np.testing.assert_allclose(new_opt_state[2].trace["w"], want_opt_state[2].trace["w"], rtol=1e-6)


@pytest.mark.parametrize("case", ["nan loss", "inf gradient", "overflowing parameters"])
def test_guarded_update_flags_a_non_finite_step(case):
  params, grads = _guard_case()
  loss, lr = jnp.float32(1.0), 0.1
  if case == "nan loss":
    loss = jnp.float32(np.nan)
  elif case == "inf gradient":
    grads = {**grads, "b": grads["b"].at[3].set(np.inf)}
  else:  # a finite gradient times a huge rate overflows float32
    lr = 1e38
  tx = _sgd(lr)
  opt_state = tx.update(grads, tx.init(params), params)[1] if case != "inf gradient" else tx.init(params)
  new_params, new_opt_state, finite, _ = jax.jit(
      lambda g, o, p, l: optim.guarded_update(tx, g, o, p, l))(grads, opt_state, params, loss)
  assert not bool(finite)
  if case == "overflowing parameters":  # applied (checked in the pass that writes it), and flagged
    assert not all(bool(jnp.isfinite(p).all()) for p in jax.tree.leaves(new_params))
    return
  for new, old in ((new_params, params), (new_opt_state, opt_state)):  # not applied: the old state
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old)):
      np.testing.assert_array_equal(a, b)


def _plateau_cuts_in_steps(cfg, errors, eval_every):
  """Feeds one error per evaluation (at steps eval_every, 2·eval_every, ...); the steps of each drop."""
  state, cuts, scale = optim.plateau_init(cfg), [], 1.0
  for i, e in enumerate(errors, start=1):
    state = optim.plateau_update(cfg, state, e, step=i * eval_every, eval_every=eval_every)
    if float(state.scale) < scale:
      cuts.append(i * eval_every)
      scale = float(state.scale)
  return cuts


def test_plateau_counts_patience_and_its_earliest_cut_in_steps():
  """patience_steps turns into evaluations for any evaluation interval; no cut before first_cut_step."""
  cfg = _schedule(name="plateau", patience_steps=1000, first_cut_step=2000, max_reductions=3)
  stalled = [0.9] * 100
  # Every 74 steps (one Imagenette epoch): patience 14 evaluations = 1036 steps; the rule reads from
  # step 2000 − 1036 = 964 on (evaluation 14 at step 1036), so the first cut is 14 evaluations later.
  assert optim.plateau_patience(cfg, 74) == 14 and optim.plateau_watch_from(cfg, 74) == 964
  cuts = _plateau_cuts_in_steps(cfg, stalled, 74)
  assert cuts[0] == 28 * 74 and cuts[0] >= 2000 and len(cuts) == 3
  assert all(b - a == 14 * 74 for a, b in zip(cuts, cuts[1:]))
  # Every 250 steps: patience 4 evaluations, the same 2000-step earliest cut.
  cuts = _plateau_cuts_in_steps(cfg, stalled, 250)
  assert cuts[0] == 2000 and all(b - a == 1000 for a, b in zip(cuts, cuts[1:]))
  # Counted in evaluations of 74 steps (patience 3), the same stall is cut at step 4·74.
  assert _plateau_cuts_in_steps(_schedule(name="plateau", patience=3), stalled, 74)[0] == 4 * 74


def test_plateau_in_steps_does_not_cut_while_the_error_improves():
  cfg = _schedule(name="plateau", patience_steps=300, first_cut_step=0)
  assert _plateau_cuts_in_steps(cfg, np.linspace(0.9, 0.2, 60), 50) == []


def test_warmup_steps_are_used_instead_of_warmup_epochs():
  s = optim.make_schedule(_schedule(name="plateau", base_lr=0.01, warmup_steps=370, warmup_epochs=2.0), 73, 6570)
  np.testing.assert_allclose(_values(s, [0, 185, 370, 5000]), [0.0, 0.005, 0.01, 0.01], rtol=1e-6, atol=1e-9)
