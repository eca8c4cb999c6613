"""Sharp checks of alexnet_jax/optim.py: each optimizer against its formula with every setting away from
its default, the schedules at their edges, the plateau rule's tolerance and cool-down, and the
conversions of patience in steps (tiny arrays: the whole file runs in seconds)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from alexnet_jax import optim
from alexnet_jax.configs import common
from alexnet_jax.errors import ConfigError


def _opt(**fields):
  c = common.base_config().optimizer
  c.update(fields)
  return c


def _sched(**fields):
  c = common.base_config().schedule
  c.update(fields)
  return c


def _run(cfg, params, grads_seq, lr=0.1):
  """The updates of make_optimizer(cfg) for each gradient in turn, at rate `lr`."""
  tx = optim.make_optimizer(cfg, params)
  state = tx.init(params)
  state.hyperparams["learning_rate"] = jnp.asarray(lr)
  out = []
  for g in grads_seq:
    updates, state = tx.update(g, state, params)
    out.append(jax.tree.map(np.asarray, updates))
  return out


def _f32(x):
  return np.asarray(x, np.float32)


# NumPy, not JAX, arrays: building a JAX array while the tests are collected would start XLA's threads in
# the process that the mutation runs fork their workers from.
_P = {"kernel": _f32([[1.0, -2.0], [0.5, 3.0]]), "bias": _f32([1.0, -1.0])}
_G1 = {"kernel": _f32([[0.3, -0.1], [0.2, 0.4]]), "bias": _f32([0.5, -0.2])}
_G2 = {"kernel": _f32([[-0.2, 0.6], [0.1, -0.3]]), "bias": _f32([0.1, 0.7])}


def test_the_learning_rate_starts_at_zero():
  tx = optim.make_optimizer(_opt(), _P)
  assert float(tx.init(_P).hyperparams["learning_rate"]) == 0.0


def test_sgd_is_the_papers_rule_decay_then_rate_then_momentum():
  lr, m, wd = 0.1, 0.9, 0.01
  ups = _run(_opt(momentum=m, weight_decay=wd), _P, [_G1, _G2], lr)
  for k in _P:
    p, g1, g2 = (np.asarray(t[k]) for t in (_P, _G1, _G2))
    v1 = -lr * (g1 + wd * p)
    v2 = m * v1 - lr * (g2 + wd * p)
    np.testing.assert_allclose(ups[0][k], v1, rtol=1e-5)
    np.testing.assert_allclose(ups[1][k], v2, rtol=1e-5)


def test_sgd_nesterov_looks_ahead():
  lr, m = 0.1, 0.5
  ups = _run(_opt(momentum=m, weight_decay=0.0, nesterov=True), _P, [_G1, _G2], lr)
  g1, g2 = np.asarray(_G1["kernel"]), np.asarray(_G2["kernel"])
  t1 = -lr * g1
  t2 = -lr * g2 + m * t1
  np.testing.assert_allclose(ups[0]["kernel"], -lr * g1 + m * t1, rtol=1e-5)
  np.testing.assert_allclose(ups[1]["kernel"], -lr * g2 + m * t2, rtol=1e-5)


def test_sgd_without_momentum_or_decay_is_rate_times_gradient_even_after_a_non_finite_step():
  """momentum=0 keeps no memory and weight_decay=0 never reads the weights (not even a non-finite one)."""
  params = {"kernel": jnp.asarray([[np.inf, 1.0]]), "bias": jnp.asarray([0.0])}
  g_bad = {"kernel": jnp.asarray([[np.inf, 1.0]]), "bias": jnp.asarray([1.0])}
  g = {"kernel": jnp.asarray([[2.0, 1.0]]), "bias": jnp.asarray([3.0])}
  ups = _run(_opt(momentum=0.0, weight_decay=0.0), params, [g_bad, g], lr=0.5)
  np.testing.assert_array_equal(ups[1]["kernel"], [[-1.0, -0.5]])
  np.testing.assert_array_equal(ups[1]["bias"], [-1.5])


def test_weight_decay_below_one_is_applied():
  ups = _run(_opt(momentum=0.0, weight_decay=0.5), _P, [_G1], lr=1.0)
  np.testing.assert_allclose(ups[0]["bias"], -(np.asarray(_G1["bias"]) + 0.5 * np.asarray(_P["bias"])), rtol=1e-6)


def test_momentum_below_one_is_applied():
  ups = _run(_opt(momentum=0.5, weight_decay=0.0), _P, [_G1, _G1], lr=1.0)
  np.testing.assert_allclose(ups[1]["bias"], -1.5 * np.asarray(_G1["bias"]), rtol=1e-6)


def test_gradient_clipping_by_global_norm_and_none_at_zero():
  g = {"kernel": jnp.asarray([[3.0, 0.0], [0.0, 0.0]]), "bias": jnp.asarray([4.0, 0.0])}  # norm 5
  plain = dict(momentum=0.0, weight_decay=0.0)
  ups = _run(_opt(grad_clip_norm=1.0, **plain), _P, [g], lr=1.0)
  np.testing.assert_allclose(ups[0]["bias"], [-0.8, 0.0], rtol=1e-6)
  ups = _run(_opt(grad_clip_norm=0.0, **plain), _P, [g], lr=1.0)
  np.testing.assert_allclose(ups[0]["bias"], [-4.0, 0.0], rtol=1e-6)
  # A norm under the threshold passes unchanged.
  ups = _run(_opt(grad_clip_norm=10.0, **plain), _P, [g], lr=1.0)
  np.testing.assert_allclose(ups[0]["kernel"], [[-3.0, 0.0], [0.0, 0.0]], rtol=1e-6)


def test_adamw_uses_every_setting_and_the_mask():
  cfg = _opt(name="adamw", adam_b1=0.5, adam_b2=0.8, eps=0.1, weight_decay=0.05, decay_biases_and_norms=False)
  lr = 0.1
  ups = _run(cfg, _P, [_G1, _G2], lr)
  for k, decayed in (("kernel", True), ("bias", False)):
    p = np.asarray(_P[k])
    m = v = 0.0
    for t, g in enumerate((np.asarray(_G1[k]), np.asarray(_G2[k])), start=1):
      m = 0.5 * m + 0.5 * g
      v = 0.8 * v + 0.2 * g * g
      step = (m / (1 - 0.5 ** t)) / (np.sqrt(v / (1 - 0.8 ** t)) + 0.1)
      want = -lr * (step + (0.05 * p if decayed else 0.0))
      np.testing.assert_allclose(ups[t - 1][k], want, rtol=1e-4)


def test_rmsprop_uses_decay_eps_momentum_and_weight_decay():
  cfg = _opt(name="rmsprop", eps=0.1, momentum=0.5, weight_decay=0.2)
  lr = 0.1
  ups = _run(cfg, _P, [_G1, _G2], lr)
  p = np.asarray(_P["kernel"])
  nu = tr = 0.0
  for t, g in enumerate((np.asarray(_G1["kernel"]), np.asarray(_G2["kernel"]))):
    g = g + 0.2 * p
    nu = 0.9 * nu + 0.1 * g * g
    tr = 0.5 * tr + (-lr) * g / (np.sqrt(nu + 0.1))  # optax puts eps inside the root
    np.testing.assert_allclose(ups[t]["kernel"], tr, rtol=1e-5)


def test_rmsprop_decays_only_kernels_under_the_mask_and_nothing_at_zero_decay():
  cfg = _opt(name="rmsprop", eps=0.1, momentum=0.0, weight_decay=0.2, decay_biases_and_norms=False)
  g = np.asarray(_G1["bias"])
  ups = _run(cfg, _P, [_G1], lr=1.0)
  np.testing.assert_allclose(ups[0]["bias"], -g / np.sqrt(0.1 * g * g + 0.1), rtol=1e-5)
  params = {"kernel": jnp.asarray([[np.inf, 1.0]]), "bias": jnp.asarray([0.0])}
  grads = {"kernel": jnp.asarray([[2.0, 1.0]]), "bias": jnp.asarray([3.0])}
  ups = _run(_opt(name="rmsprop", momentum=0.0, weight_decay=0.0), params, [grads], lr=1.0)
  assert np.isfinite(ups[0]["kernel"]).all()


def test_zero_weight_decay_adds_no_part_to_the_chain():
  """The state's parts are saved in checkpoints: a decay of 0 must not add one (a masked, empty decay)."""
  def parts(**fields):
    return [type(s) for s in optim.make_optimizer(_opt(**fields), _P).init(_P).inner_state]
  assert parts(name="sgd", weight_decay=0.0, momentum=0.9) == [optax.EmptyState, optax.TraceState]
  assert parts(name="sgd", weight_decay=0.1, momentum=0.9) == [optax.MaskedState, optax.EmptyState, optax.TraceState]
  assert len(parts(name="rmsprop", weight_decay=0.0, momentum=0.5)) == 1
  assert parts(name="rmsprop", weight_decay=0.1, momentum=0.5)[0] == optax.MaskedState


def test_unknown_optimizer_names_itself_and_the_choices():
  with pytest.raises(ConfigError, match="^" + re.escape(
      "config.optimizer.name='lamb' is not known; choose sgd, adamw or rmsprop.") + "$"):
    optim.make_optimizer(_opt(name="lamb"), _P).init(_P)


def test_decay_mask_matrix_and_scalar():
  mask = optim.decay_mask({"m": jnp.ones((2, 2)), "v": jnp.ones((3,)), "s": jnp.ones(())}, False)
  assert mask == {"m": True, "v": False, "s": False}
  assert optim.decay_mask({"v": jnp.ones((3,))}, True) == {"v": True}


def test_guarded_update_of_an_empty_tree():
  tx = optax.sgd(0.1)
  new_params, _, finite, norm = optim.guarded_update(tx, {}, tx.init({}), {}, jnp.float32(1.0))
  assert new_params == {} and bool(finite) and float(norm) == 0.0


def _values(s, steps):
  return np.array([float(s(jnp.asarray(t))) for t in steps])


def test_unknown_schedule_names_itself_and_the_choices():
  with pytest.raises(ConfigError, match="^" + re.escape(
      "config.schedule.name='linear' is not known; choose plateau, step, cosine, poly or constant.") + "$"):
    optim.make_schedule(_sched(name="linear"), 10, 100)


def test_step_boundaries_count_from_the_end_of_warmup_and_drop_those_inside_it():
  # Warm-up of 1 epoch (10 steps); a boundary at the end of warm-up is dropped, one at epoch 3 is at step 30.
  s = optim.make_schedule(_sched(name="step", base_lr=1.0, factor=0.5, step_epochs=(1.0, 3.0), warmup_epochs=1.0),
                          10, 50)
  np.testing.assert_allclose(_values(s, [5, 10, 29, 30, 40]), [0.5, 1.0, 1.0, 0.5, 0.5], rtol=1e-6)


def test_step_boundary_after_warmup_is_at_its_epoch():
  # Warm-up of 1 epoch (10 steps); the boundary at epoch 2 is at step 20, 10 steps into the main schedule.
  s = optim.make_schedule(_sched(name="step", base_lr=1.0, factor=0.5, step_epochs=(2.0,), warmup_epochs=1.0), 10, 50)
  np.testing.assert_allclose(_values(s, [19, 20]), [1.0, 0.5], rtol=1e-6)


def test_step_boundary_one_step_in():
  s = optim.make_schedule(_sched(name="step", base_lr=1.0, factor=0.5, step_epochs=(0.1,)), 10, 50)
  np.testing.assert_allclose(_values(s, [0, 1]), [1.0, 0.5], rtol=1e-6)


def test_one_warmup_step_starts_at_zero():
  s = optim.make_schedule(_sched(name="constant", base_lr=1.0, warmup_steps=1), 10, 50)
  np.testing.assert_allclose(_values(s, [0, 1, 5]), [0.0, 1.0, 1.0])


def test_warmup_epochs_are_rounded_steps():
  s = optim.make_schedule(_sched(name="constant", base_lr=1.0, warmup_epochs=0.25), 10, 50)  # 2.5 → 2 steps
  np.testing.assert_allclose(_values(s, [0, 1, 2]), [0.0, 0.5, 1.0], rtol=1e-6)


@pytest.mark.parametrize("name", ["cosine", "poly"])
def test_decay_of_one_step_after_warmup_and_of_none(name):
  s = optim.make_schedule(_sched(name=name, base_lr=1.0, warmup_steps=4), 10, 5)
  np.testing.assert_allclose(_values(s, [4, 5]), [1.0, 0.0], atol=1e-6)
  s = optim.make_schedule(_sched(name=name, base_lr=1.0, warmup_steps=4), 10, 4)  # nothing left: still a schedule
  np.testing.assert_allclose(_values(s, [0, 2]), [0.0, 0.5], atol=1e-6)


def _scales(cfg, errors, **kw):
  state, out = optim.plateau_init(cfg), []
  for i, e in enumerate(errors, start=1):
    state = optim.plateau_update(cfg, state, e, **({"step": i * kw["every"], "eval_every": kw["every"]} if kw else {}))
    out.append(float(state.scale))
  return out


def test_plateau_improvement_must_exceed_min_delta():
  cfg = _sched(name="plateau", patience=1, min_delta=1e-2, factor=0.5, max_reductions=1)
  # Each error is 0.5% below the last: under min_delta, so no improvement; one drop after one evaluation.
  assert _scales(cfg, [1.0, 0.995, 0.99]) == [1.0, 0.5, 0.5]
  cfg.min_delta = 1e-3
  assert _scales(cfg, [1.0, 0.995, 0.99]) == [1.0, 1.0, 1.0]


def test_plateau_cooldown_waits_after_a_drop():
  cfg = _sched(name="plateau", patience=1, factor=0.5, max_reductions=3, cooldown=2, min_delta=1e-3)
  assert _scales(cfg, [1.0] * 6) == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_plateau_min_scale_is_factor_to_the_power_of_reductions():
  cfg = _sched(name="plateau", patience=1, factor=0.5, max_reductions=2, min_delta=1e-3)
  assert _scales(cfg, [1.0] * 6) == [1.0, 0.5, 0.25, 0.25, 0.25, 0.25]


def test_plateau_patience_conversions():
  assert optim.plateau_patience(_sched(patience=5, patience_steps=0), 10) == 5
  assert optim.plateau_patience(_sched(patience=5, patience_steps=1), 10) == 1
  assert optim.plateau_patience(_sched(patience=5, patience_steps=5), 1) == 5
  assert optim.plateau_patience(_sched(patience=5, patience_steps=5), 0) == 5
  assert optim.plateau_patience(_sched(patience=5, patience_steps=25), 10) == 3
  assert isinstance(optim.plateau_patience(_sched(patience_steps=25), 10), int)


def test_plateau_watch_from():
  assert optim.plateau_watch_from(_sched(patience=2, first_cut_step=0), 10) == 0
  assert optim.plateau_watch_from(_sched(patience=2, first_cut_step=25), 10) == 5
  assert optim.plateau_watch_from(_sched(patience=2, first_cut_step=25), 1) == 23
  assert optim.plateau_watch_from(_sched(patience=2, first_cut_step=25), 0) == 23
  assert optim.plateau_watch_from(_sched(patience_steps=4, first_cut_step=25), 1) == 21


def test_plateau_reads_the_evaluation_at_its_watch_step_with_patience_in_steps():
  cfg = _sched(name="plateau", patience=9, patience_steps=2, first_cut_step=4, factor=0.5, max_reductions=1,
               min_delta=1e-3)
  assert optim.plateau_watch_from(cfg, 1) == 2
  state = optim.plateau_init(cfg)
  state = optim.plateau_update(cfg, state, 0.5, step=1)  # before the watch step: not read
  assert float(state.best_value) == np.inf
  scales = []
  for step in (2, 3, 4):  # read from step 2 (best 0.5), then two without improvement (default eval_every 1)
    state = optim.plateau_update(cfg, state, 0.5, step=step)
    scales.append(float(state.scale))
  assert scales == [1.0, 1.0, 0.5]


def test_plateau_without_a_step_counts_evaluations():
  cfg = _sched(name="plateau", patience=2, patience_steps=100, first_cut_step=1000, factor=0.5, min_delta=1e-3)
  assert _scales(cfg, [1.0] * 3) == [1.0, 1.0, 0.5]


def test_steps_for_edges():
  assert optim.steps_for(128, 128, 1.0) == (1, 1)
  assert optim.steps_for(300, 100, 0.5) == (3, 2)
  assert optim.steps_for(300, 100, 0.1) == (3, 1)
  assert optim.steps_for(50, 100, 0.0) == (1, 1)
