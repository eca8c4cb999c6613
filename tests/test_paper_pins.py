"""Details of the papers pinned against hand computation and reference implementations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from alexnet_jax import models
from alexnet_jax import optim
from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.configs import googlenet as googlenet_config
from alexnet_jax.data import augment
from alexnet_jax.eval.views import five_crop_offsets
from alexnet_jax.eval.views import ten_crop_views
from alexnet_jax.models import layers


def _sgd_cfg(decay_all: bool = True) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, nesterov=False, weight_decay=5e-4,
                                        decay_biases_and_norms=decay_all, adam_b1=0.9, adam_b2=0.999, eps=1e-8,
                                        grad_clip_norm=0.0))


def test_update_rule_matches_the_paper_across_a_learning_rate_drop():
  """v ← 0.9·v − 0.0005·ε·w − ε·g;  w ← w + v (Sec. 5), with ε dropping 10× at step 3."""
  params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
  grads = [{"w": jnp.array([0.3, 0.1]), "b": jnp.array(-0.2)},
           {"w": jnp.array([-0.1, 0.4]), "b": jnp.array(0.1)},
           {"w": jnp.array([0.2, 0.2]), "b": jnp.array(0.3)},
           {"w": jnp.array([0.5, -0.5]), "b": jnp.array(-0.1)}]
  rates = [0.01, 0.01, 0.001, 0.001]
  tx = optim.make_optimizer(_sgd_cfg(), params)
  state = tx.init(params)
  w = {k: np.asarray(v, np.float64) for k, v in params.items()}
  v = {k: np.zeros_like(x) for k, x in w.items()}
  p = params
  for g, eps in zip(grads, rates):
    state.hyperparams["learning_rate"] = jnp.asarray(eps)
    updates, state = tx.update(g, state, p)
    p = jax.tree.map(lambda a, b: a + b, p, updates)
    for k in w:  # by hand, in float64
      v[k] = 0.9 * v[k] - 0.0005 * eps * w[k] - eps * np.asarray(g[k], np.float64)
      w[k] = w[k] + v[k]
    for k in w:
      np.testing.assert_allclose(np.asarray(p[k]), w[k], rtol=1e-6, atol=1e-7)


def test_caffe_convention_leaves_biases_undecayed():
  params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
  zero = jax.tree.map(jnp.zeros_like, params)
  tx = optim.make_optimizer(_sgd_cfg(decay_all=False), params)
  state = tx.init(params)
  state.hyperparams["learning_rate"] = jnp.asarray(0.1)
  updates, _ = tx.update(zero, state, params)
  assert float(jnp.abs(updates["bias"]).max()) == 0.0
  assert float(updates["kernel"][0, 0]) == pytest.approx(-0.1 * 5e-4)


def _lrn_direct(a: np.ndarray, n: int, k: float, alpha: float, beta: float, groups: int = 1) -> np.ndarray:
  """b[c] = a[c] / (k + α Σ_{c' = max(0, c−n/2)}^{min(N−1, c+n/2)} a[c']²)^β, within each group."""
  out = np.empty_like(a)
  channels = a.shape[-1] // groups
  for c in range(a.shape[-1]):
    g0 = (c // channels) * channels
    lo, hi = max(g0, c - n // 2), min(g0 + channels - 1, c + n // 2)
    s = np.sum(a[..., lo:hi + 1] ** 2, axis=-1)
    out[..., c] = a[..., c] / (k + alpha * s) ** beta
  return out


def test_lrn_is_the_papers_formula():
  """α multiplies the plain sum (not α/n as in Caffe and torch)."""
  a = np.random.default_rng(0).normal(scale=30.0, size=(2, 3, 3, 12)).astype(np.float32)
  lrn = layers.LocalResponseNorm(5, 2.0, 1e-4, 0.75)
  got = np.asarray(lrn.apply({}, jnp.asarray(a), mutable=["intermediates"])[0])
  np.testing.assert_allclose(got, _lrn_direct(a.astype(np.float64), 5, 2.0, 1e-4, 0.75), rtol=1e-5)
  ref = tf.nn.local_response_normalization(a, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75).numpy()
  np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_tower_lrn_keeps_windows_inside_each_tower():
  a = np.random.default_rng(1).normal(scale=30.0, size=(1, 2, 2, 8)).astype(np.float32)
  got = np.asarray(layers.LocalResponseNorm(5, 2.0, 1e-4, 0.75, groups=2).apply(
      {}, jnp.asarray(a), mutable=["intermediates"])[0])
  np.testing.assert_allclose(got, _lrn_direct(a.astype(np.float64), 5, 2.0, 1e-4, 0.75, groups=2), rtol=1e-5)
  across = np.asarray(layers.LocalResponseNorm(5, 2.0, 1e-4, 0.75).apply(
      {}, jnp.asarray(a), mutable=["intermediates"])[0])
  assert not np.allclose(got[..., 2:6], across[..., 2:6])  # channels next to the boundary differ


def test_lrn_reports_the_size_of_its_normalisation_term():
  cfg = alexnet_config.get_config("smoke")
  model = models.build_model(cfg.model, 10)
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 64, 64, 3)), jnp.float32)
  # Jitted: op by op, the initialisation would compile each of its operations (about 3 s of CPU).
  variables = jax.jit(lambda key: model.init(key, x, train=False))(jax.random.key(0))
  terms = layers.lrn_terms(model, variables, x)
  assert set(terms) == {"lrn1", "lrn2"}
  assert all(t > 0 for t in terms.values())
  # Unit-scale inputs with quick mode's α make the term comparable to k; the paper's α would not.
  cfg.model.lrn_alpha = 1e-4
  small = layers.lrn_terms(models.build_model(cfg.model, 10), variables, x)
  assert terms["lrn1"] > 1000 * small["lrn1"]


def test_paper_init_sets_biases_to_one_in_conv2_4_5_fc6_7():
  model = models.build_model(alexnet_config.get_config("").model, 1000)
  # The paper net draws 61 M numbers: one compiled program at XLA's optimisation level 1 takes about
  # 2 s of CPU, where op by op, or at the tests' level 0 (conftest), it takes 6-10 s.
  init = jax.jit(lambda key: model.init(key, jnp.zeros((1, 227, 227, 3)), train=False)["params"])
  params = init.lower(jax.random.key(0)).compile({"xla_backend_optimization_level": 1})(jax.random.key(0))
  for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
    bias = np.asarray(params[name]["bias"])
    assert float(np.min(bias)) == 1.0 == float(np.max(bias)), name
  for name in ("conv1", "conv3", "fc8"):
    assert float(np.abs(np.asarray(params[name]["bias"])).max()) == 0.0, name
  assert float(jnp.std(params["fc6"]["kernel"])) == pytest.approx(0.01, rel=0.02)


def test_paper_crop_geometry():
  """Sec. 4.1: random 224 patches inside the central 256×256 of the short-side-256 image."""
  shape = tf.constant([256, 341])
  lefts_paper, lefts_full = set(), set()
  for i in range(300):
    seed = tf.constant([i, 7])
    top, left, h, w = augment.random_crop_window(shape, 224, 256, seed, "center_square").numpy()
    assert (h, w) == (224, 224) and 0 <= top <= 32 and 42 <= left <= 42 + 32
    lefts_paper.add(int(left))
    lefts_full.add(int(augment.random_crop_window(shape, 224, 256, seed, "full").numpy()[1]))
  assert min(lefts_paper) == 42 or max(lefts_paper) == 74 or len(lefts_paper) > 20
  assert max(lefts_full) > 74 and min(lefts_full) < 42  # the old geometry: anywhere in 256×341


def test_ten_crop_view_positions():
  assert five_crop_offsets(256, 256, 224) == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
  # An image whose red channel is the column index: each view's first column says where it lies.
  cols = np.broadcast_to(np.arange(341, dtype=np.float32)[None, :, None], (256, 341, 3)).copy()
  views = ten_crop_views(tf.constant(cols), 224, 256).numpy()
  assert views.shape == (10, 224, 224, 3)
  first = [int(round(v[0, 0, 0])) for v in views]
  assert first[:5] == [42, 74, 42, 74, 58]  # the central 256 square starts at column 42
  assert first[5:] == [42 + 223, 74 + 223, 42 + 223, 74 + 223, 58 + 223]  # mirrors


def test_googlenet_parameter_count_with_aux_heads():
  """13,004,888 with the auxiliary heads it trains with (6,624,904 without)."""
  cfg = googlenet_config.get_config("")
  model = models.build_model(cfg.model, 1000)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)), train=False))
  count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"]))
  assert count == 13_004_888


def test_googlenet_paper_pools():
  """variant=paper: aux heads 5×5/3 average pool (4×4 at 224), 3×3/2 max-pool after inception 4e."""
  cfg = googlenet_config.get_config("variant=paper")
  model = models.build_model(cfg.model, 1000)
  x = jnp.zeros((1, 224, 224, 3))
  _, state = jax.eval_shape(lambda: model.init_with_output(
      jax.random.key(0), x, train=False, capture_intermediates=True))
  inter = state["intermediates"]
  assert inter["inception4e"]["__call__"][0].shape[1:3] == (14, 14)
  assert inter["inception5a"]["__call__"][0].shape[1:3] == (7, 7)
  assert state["params"]["aux1"]["fc1"]["kernel"].shape[0] == 4 * 4 * 128
