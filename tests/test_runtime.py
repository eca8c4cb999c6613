"""The train step of `alexnet_jax.runtime`: bf16 compute, the families' steps, the loss terms."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from alexnet_jax import models
from alexnet_jax import runtime
from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.configs import googlenet as googlenet_config
from alexnet_jax.configs import squeezenet as squeezenet_config
from alexnet_jax.configs import vgg as vgg_config

NUM_CLASSES = 10
BATCH = 8
LR = 0.01
# One schedule object and aux_weight traced: every test on the same state reuses one compiled step.
SCHEDULE = optax.constant_schedule(LR)
_train_step = jax.jit(runtime.train_step, static_argnames=("schedule", "label_smoothing", "augment"))


def _benchmark_optimizer(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets config.optimizer to the update rule experiments/benchmark.py uses (learning rate LR)."""
  c.optimizer.update(name="sgd", momentum=0.9, nesterov=False, weight_decay=5e-4, decay_biases_and_norms=True,
                     grad_clip_norm=0.0)
  return c


def _alexnet_config() -> ml_collections.ConfigDict:
  c = alexnet_config.get_config("smoke,width=0.25")
  c.model.fc_dim = 64
  return _benchmark_optimizer(c)


def _state(config: ml_collections.ConfigDict) -> runtime.TrainState:
  model = models.build_model(config.model, NUM_CLASSES, runtime.compute_dtype(config))
  init = functools.partial(runtime.create_train_state, config, model, config.input.image_size)
  return jax.jit(init)(jax.random.key(0))


def _batch(config: ml_collections.ConfigDict, scale: float = 1.0) -> dict[str, jax.Array]:
  rng = np.random.default_rng(0)
  size = config.input.image_size
  return {"image": jnp.asarray(rng.normal(size=(BATCH, size, size, 3)).astype(np.float32) * scale),
          "label": jnp.asarray(rng.integers(0, NUM_CLASSES, BATCH).astype(np.int32))}


def _step(state: runtime.TrainState, batch, *, aux_weight: float = 0.0):
  """One jitted runtime.train_step at learning rate LR; returns (new state, loss, finite)."""
  return _loss(_train_step(state, batch, jax.random.key(1), schedule=SCHEDULE, label_smoothing=0.0,
                           aux_weight=jnp.float32(aux_weight)))


@functools.partial(jax.jit, static_argnames="label_smoothings")
def _steps_and_outputs(state: runtime.TrainState, batch, aux_weight, label_smoothings=(0.0,)):
  """One runtime.train_step from `state` per label smoothing (learning rate LR), and the logits and
  sown auxiliary logits the step at `state.step` computes (same dropout key), in one compiled
  program: one compile instead of one per step plus one for the forward, whose copies XLA merges."""
  base_key = jax.random.key(1)
  steps = [runtime.train_step(state, batch, base_key, schedule=SCHEDULE, label_smoothing=smoothing,
                              aux_weight=aux_weight) for smoothing in label_smoothings]
  key = jax.random.fold_in(base_key, state.step)
  logits, mutated = state.apply_fn(runtime.model_variables(state), batch["image"], train=True,
                                   rngs={"dropout": key}, mutable=["batch_stats", "aux"])
  return steps, logits, jax.tree.leaves(mutated.get("aux", {}))


def _loss(step_output) -> tuple[runtime.TrainState, float, bool]:
  """(new state, loss, finite) of one train_step output, as `_step` returns them."""
  new, m, finite = step_output
  return new, float(m.compute()["loss"]), bool(finite)


@pytest.fixture(scope="module")
def alexnet():
  """The float32 AlexNet of the bf16 and label-smoothing tests, stepped once from its initial state
  without and with label smoothing 0.1: (config, state, batch, steps, logits), computed once."""
  config = _alexnet_config()
  state, batch = _state(config), _batch(config, 50.0)
  steps, logits, _ = _steps_and_outputs(state, batch, jnp.float32(0.0), label_smoothings=(0.0, 0.1))
  return config, state, batch, [_loss(s) for s in steps], logits


@pytest.fixture(scope="module")
def googlenet():
  """Quick-mode GoogLeNet at eighth width: (config, state, batch), built once for its three tests."""
  config = _benchmark_optimizer(googlenet_config.get_config("smoke"))
  config.model.width = 0.125
  return config, _state(config), _batch(config)


def _ce(logits, labels, smoothing: float = 0.0) -> float:
  """Mean cross-entropy against (1 - α)·one-hot + α/K, written out in numpy."""
  logits = np.asarray(logits, np.float64)
  logp = logits - logits.max(-1, keepdims=True)
  logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
  k = logits.shape[-1]
  target = (1 - smoothing) * np.eye(k)[np.asarray(labels)] + smoothing / k
  return float(-(target * logp).sum(-1).mean())


def _max_abs_diff(a, b) -> float:
  # In numpy: eager jnp would compile three small programs per distinct parameter shape.
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(jax.tree.leaves(a),
                                                                                  jax.tree.leaves(b)))


def test_bf16_step_close_to_float32_and_keeps_float32_state(alexnet):
  config, s32, batch, ((n32, loss32, ok32), _), _ = alexnet
  config16 = _benchmark_optimizer(alexnet_config.get_config("smoke,width=0.25,bf16"))  # the `bf16` argument
  config16.model.fc_dim = 64
  assert (config.dtype, config16.dtype) == ("float32", "bfloat16")
  s16 = _state(config16)
  for a, b in zip(jax.tree.leaves(s32.params), jax.tree.leaves(s16.params)):
    assert b.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)  # the same initial parameters
  n16, loss16, ok16 = _step(s16, batch)
  assert ok32 and ok16
  # Close, but not equal: the convolutions and matmuls really ran in bfloat16.
  assert 0 < abs(loss16 - loss32) <= 0.02 * abs(loss32), (loss16, loss32)
  for tree in (n16.params, n16.opt_state):
    floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float32 for x in floats)


def _assert_took_a_step(new, state, loss: float, finite: bool) -> None:
  assert finite and np.isfinite(loss) and loss > 0
  assert int(new.step) == 1
  assert _max_abs_diff(new.params, state.params) > 0
  moved = [bool(np.any(np.asarray(n) != np.asarray(o)))
           for n, o in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params))]
  assert np.mean(moved) > 0.9  # nearly every tensor got an update


@pytest.mark.parametrize("family", ["vgg", "squeezenet"])  # GoogLeNet: the aux-weight test below
def test_family_takes_a_training_step(family):
  config = {"vgg": vgg_config, "squeezenet": squeezenet_config}[family].get_config("smoke")
  config.model.width = min(config.model.width, 0.125)
  state, batch = _state(config), _batch(config)
  new, loss, finite = _step(state, batch, aux_weight=config.aux_loss_weight)
  _assert_took_a_step(new, state, loss, finite)


def test_label_smoothing_matches_the_formula(alexnet):
  logits = jnp.array([[2.0, 0.5, -1.0, 0.0], [0.0, 3.0, 1.0, -2.0]])
  labels = jnp.array([0, 2])
  for alpha in (0.0, 0.1, 0.4):
    got = float(runtime.cross_entropy(logits, labels, alpha).mean())
    np.testing.assert_allclose(got, _ce(logits, labels, alpha), rtol=1e-6)
  # Smoothing moves the loss by α·(mean over classes of CE − CE of the label).
  plain = _ce(logits, labels)
  uniform = float(np.mean([_ce(logits, np.full(2, k)) for k in range(4)]))
  np.testing.assert_allclose(float(runtime.cross_entropy(logits, labels, 0.1).mean()) - plain,
                             0.1 * (uniform - plain), rtol=1e-5)
  # And the train step uses it.
  _, _, batch, ((_, loss0, _), (_, loss1, _)), step_logits = alexnet
  np.testing.assert_allclose(loss0, _ce(step_logits, batch["label"]), rtol=1e-4)
  np.testing.assert_allclose(loss1, _ce(step_logits, batch["label"], 0.1), rtol=1e-4)


@pytest.mark.slow
def test_aux_weight_scales_the_googlenet_aux_term(googlenet):
  _, state, batch = googlenet
  # aux_weight is traced: both steps run one compiled program.
  (step0,), logits, aux = _steps_and_outputs(state, batch, jnp.float32(0.0))
  (step3,), _, _ = _steps_and_outputs(state, batch, jnp.float32(0.3))
  assert len(aux) == 2  # aux1 after inception 4a, aux2 after 4d
  aux_ce = sum(_ce(a.astype(jnp.float32), batch["label"]) for a in aux)
  _, loss0, _ = _loss(step0)
  new, loss3, finite = _loss(step3)
  _assert_took_a_step(new, state, loss3, finite)  # GoogLeNet, with its aux heads, trains
  np.testing.assert_allclose(loss0, _ce(logits, batch["label"]), rtol=1e-4)
  np.testing.assert_allclose(loss3 - loss0, 0.3 * aux_ce, rtol=1e-3)
