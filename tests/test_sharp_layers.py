"""Sharp checks of alexnet_jax/models/layers.py on tiny arrays: LRN against its formula with every
setting away from its default, ceil-mode pads against torch's rule, pooling, initialisers by their
statistics, the conv blocks and head against hand computations, adaptive pooling's windows."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax.models import layers


def _rng(seed=0):
  return np.random.default_rng(seed)


def test_scaled_rounds_and_never_goes_below_one():
  assert layers.scaled(10, 0.37) == 4
  assert layers.scaled(64, 0.5) == 32
  assert layers.scaled(10, 0.04) == 1
  assert isinstance(layers.scaled(10, 0.37), int)


def test_activation_by_name_and_its_error():
  assert layers.activation("tanh") is jnp.tanh
  with pytest.raises(ValueError, match="^" + re.escape(
      "Unknown activation 'swish'; choose one of ['gelu', 'relu', 'sigmoid', 'tanh'].") + "$"):
    layers.activation("swish")


_SHAPE = (3, 3, 64, 128)  # fan_in 576, fan_out 1152


@pytest.mark.parametrize("scheme,std", [("paper", 0.5), ("he", np.sqrt(2 / 1152)), ("he_in", np.sqrt(2 / 576)),
                                        ("lecun", np.sqrt(1 / 576)), ("xavier", np.sqrt(2 / (576 + 1152)))])
def test_kernel_init_standard_deviations(scheme, std):
  w = np.asarray(layers.kernel_init(scheme, 0.5)(jax.random.key(0), _SHAPE, jnp.float32))
  assert abs(w.std() / std - 1) < 0.03, (w.std(), std)
  assert abs(w.mean()) < 0.05 * std
  if scheme == "xavier":  # uniform: bounded by sqrt(3)·std
    assert np.abs(w).max() <= np.sqrt(3) * std * 1.0001
  else:
    assert np.abs(w).max() > 2.2 * std  # a (truncated) normal, not a uniform


def test_kernel_init_default_std_and_unknown_scheme():
  w = np.asarray(layers.kernel_init("paper")(jax.random.key(0), _SHAPE, jnp.float32))
  assert abs(w.std() / 0.01 - 1) < 0.03
  with pytest.raises(ValueError, match="^" + re.escape(
      "Unknown init scheme 'orthogonal'; choose paper, he, he_in, lecun or xavier.") + "$"):
    layers.kernel_init("orthogonal")


def _lrn_ref(a, size, k, alpha, beta, groups=1):
  a = a.astype(np.float64)
  c_all = a.shape[-1]
  per = c_all // groups
  half = (size - 1) // 2
  out = np.empty_like(a)
  terms = np.empty_like(a)
  for c in range(c_all):
    g0 = (c // per) * per
    lo, hi = max(g0, c - half), min(g0 + per - 1, c + (size - 1 - half))
    terms[..., c] = alpha * np.sum(a[..., lo:hi + 1] ** 2, axis=-1)
    out[..., c] = a[..., c] / (k + terms[..., c]) ** beta
  return out, terms


@pytest.mark.parametrize("size,groups", [(3, 1), (4, 1), (4, 2), (1, 1)])
def test_lrn_matches_its_formula_and_sows_the_median_term(size, groups):
  a = _rng(1).normal(scale=3.0, size=(2, 2, 3, 8)).astype(np.float32)
  k, alpha, beta = 1.5, 0.05, 0.6
  got, state = layers.LocalResponseNorm(size, k, alpha, beta, groups).apply(
      {}, jnp.asarray(a), mutable=["intermediates"])
  want, terms = _lrn_ref(a, size, k, alpha, beta, groups)
  np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(state["intermediates"]["norm_term"][0]), np.median(terms) / k, rtol=1e-5)


def test_lrn_keeps_a_bfloat16_input_dtype_and_computes_in_float32():
  a = np.full((1, 1, 1, 3), 300.0, np.float32)  # a² overflows nothing in float32, 3·a² rounds in bfloat16
  got = layers.LocalResponseNorm(3, 2.0, 1e-4, 0.75).apply({}, jnp.asarray(a, jnp.bfloat16),
                                                           mutable=["intermediates"])[0]
  assert got.dtype == jnp.bfloat16
  want, _ = _lrn_ref(a, 3, 2.0, 1e-4, 0.75)
  np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=1e-2)


class _Block(nn.Module):
  lrn: bool = True

  @nn.compact
  def __call__(self, x, train=True):
    del train
    x = layers.LocalResponseNorm(3, 1.0, 0.5, 0.75, name="lrn_a")(x)
    return layers.LocalResponseNorm(3, 4.0, 0.5, 0.75, name="lrn_b")(x)


class _Net(nn.Module):
  lrn: bool = True

  @nn.compact
  def __call__(self, x, train=True):
    assert train is False
    return _Block(name="block")(layers.LocalResponseNorm(3, 2.0, 0.5, 0.75, name="top")(x))


class _Plain(nn.Module):
  @nn.compact
  def __call__(self, x, train=True):
    return x * 2


def test_lrn_terms_names_every_lrn_by_its_path():
  x = jnp.asarray(_rng(2).normal(size=(2, 2, 2, 4)), jnp.float32)
  terms = layers.lrn_terms(_Net(), {}, x)
  assert sorted(terms) == ["block/lrn_a", "block/lrn_b", "top"]
  assert all(isinstance(v, float) and v > 0 for v in terms.values())
  sq = np.asarray(x, np.float64) ** 2
  window = sq + np.roll(sq, 1, -1) * (np.arange(4) > 0) + np.roll(sq, -1, -1) * (np.arange(4) < 3)
  np.testing.assert_allclose(terms["top"], np.median(0.5 * window) / 2.0, rtol=1e-5)
  assert layers.lrn_terms(_Plain(), {}, x) == {}


class _Bn(_Net):
  bn: bool = True


def test_reports_lrn_terms_only_for_lrn_without_batch_norm():
  assert not layers.reports_lrn_terms(_Plain())
  assert not layers.reports_lrn_terms(_Net(lrn=False))
  assert not layers.reports_lrn_terms(_Bn())
  assert layers.reports_lrn_terms(_Net()) is True
  assert layers.reports_lrn_terms(_Bn(bn=False)) is True


def test_lrn_term_arrays_are_the_terms_as_arrays():
  x = jnp.asarray(_rng(2).normal(size=(2, 2, 2, 4)), jnp.float32)
  arrays = layers.lrn_term_arrays(_Net(), {}, x)
  terms = layers.lrn_terms(_Net(), {}, x)
  assert sorted(arrays) == sorted(terms) and all(arrays[k].shape == () for k in arrays)
  assert {k: float(v) for k, v in arrays.items()} == pytest.approx(terms, rel=1e-6)


def test_log_lrn_terms_logs_every_term_once_and_nothing_for_none(monkeypatch):
  logged = []
  monkeypatch.setattr(layers.logging, "info", lambda fmt, *args: logged.append(fmt % args))
  layers.log_lrn_terms({})
  assert logged == []
  layers.log_lrn_terms({"lrn1": 0.01234, "block/lrn2": 25.0})
  assert logged == ["LRN normalisation term, median alpha*sum(a^2)/k per layer (<< 1: LRN is a fixed gain): "
                    "lrn1 0.0123, block/lrn2 25"]


def _torch_ceil_out(size, window, stride):
  out = -(-(size - window) // stride) + 1
  if (out - 1) * stride >= size:
    out -= 1
  return out


@pytest.mark.parametrize("size,window,stride,pad", [
    (6, 3, 2, 1), (5, 3, 2, 0), (7, 2, 2, 1), (5, 1, 3, 0), (6, 1, 3, 0), (13, 3, 2, 0), (14, 3, 2, 1),
    (8, 3, 3, 1), (4, 4, 1, 0)])
def test_ceil_mode_pads_follow_torch(size, window, stride, pad):
  assert layers.ceil_mode_pads((1, size, 3, 1), window, stride)[0] == (0, pad)
  assert (size + pad - window) // stride + 1 == _torch_ceil_out(size, window, stride)


def test_ceil_mode_pads_per_axis():
  assert layers.ceil_mode_pads((2, 6, 5, 9), 3, 2) == [(0, 1), (0, 0)]


def test_max_pool_ceil_mode_and_plain():
  x = jnp.asarray(_rng(3).normal(size=(1, 6, 5, 2)), jnp.float32)
  got = np.asarray(layers.max_pool(x, 3, 2, ceil_mode=True))
  a = np.asarray(x)
  want = np.stack([np.stack([a[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(0, 1)) for j in range(2)])
                   for i in range(3)])[None]
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(np.asarray(layers.max_pool(x, 3, 2)), want[:, :2])
  same = np.asarray(layers.max_pool(x, 3, 2, "SAME"))
  assert same.shape == (1, 3, 3, 2)


def test_avg_pool_counts_padding_and_global_pool_averages_both_axes():
  x = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
  got = np.asarray(layers.avg_pool(x, 3, 1, padding=((1, 1), (1, 1))))
  assert got.shape == (1, 3, 3, 1)
  assert got[0, 0, 0, 0] == pytest.approx((1 + 2 + 4 + 5) / 9)
  assert got[0, 1, 1, 0] == pytest.approx(5.0)
  assert layers.avg_pool(x, 2, 1).shape == (1, 2, 2, 1)
  z = jnp.arange(16.0).reshape(1, 4, 4, 1)
  np.testing.assert_allclose(layers.avg_pool(z, 2, 2)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
  y = jnp.arange(12.0).reshape(1, 2, 3, 2)
  np.testing.assert_allclose(layers.global_avg_pool(y), [[5.0, 6.0]])


def test_batch_norm_settings():
  bn = layers.batch_norm(True, jnp.bfloat16, name="n", zero_init=True, momentum=0.8, epsilon=1e-3)
  assert (bn.use_running_average, bn.momentum, bn.epsilon, bn.dtype, bn.param_dtype, bn.name) == (
      False, 0.8, 1e-3, jnp.bfloat16, jnp.float32, "n")
  assert bn.scale_init is nn.initializers.zeros
  bn = layers.batch_norm(False, jnp.float32)
  assert (bn.use_running_average, bn.momentum, bn.epsilon, bn.name) == (True, 0.9, 1e-5, None)
  assert bn.scale_init is nn.initializers.ones


def _conv_ref(x, w, stride=1, pad=0, groups=1):
  return jax.lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(w), (stride, stride), [(pad, pad)] * 2,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups,
                                      precision="highest")


@pytest.fixture
def conv_calls(monkeypatch):
  calls = []
  real = layers.cpu_gradients.conv_general_dilated

  def spy(*args, **kwargs):
    calls.append(kwargs.get("feature_group_count", 1))
    return real(*args, **kwargs)

  monkeypatch.setattr(layers.cpu_gradients, "conv_general_dilated", spy)
  return calls


def test_grouped_conv_splits_on_cpu_and_fuses_elsewhere(conv_calls, monkeypatch):
  x = _rng(4).normal(size=(1, 4, 4, 4)).astype(np.float32)
  conv = layers.Conv(6, (3, 3), strides=(2, 2), padding=1, groups=2, bias_init=nn.initializers.ones)
  variables = conv.init(jax.random.key(0), x)
  w = variables["params"]["kernel"]
  assert w.shape == (3, 3, 2, 6) and w.dtype == jnp.float32
  assert variables["params"]["bias"].shape == (6,)
  got = conv.apply(variables, x)
  np.testing.assert_allclose(got, _conv_ref(x, w, 2, 1, 2) + 1.0, rtol=1e-5, atol=1e-5)
  assert conv_calls == [1, 1, 1, 1]  # init and apply, one convolution per group
  conv_calls.clear()
  monkeypatch.setattr(layers.jax, "default_backend", lambda: "gpu")
  np.testing.assert_allclose(conv.apply(variables, x), got, rtol=1e-5, atol=1e-5)
  assert conv_calls == [2]
  conv_calls.clear()
  monkeypatch.setattr(layers.jax, "default_backend", lambda: "cpu")
  one = layers.Conv(6, (1, 1))
  one.apply(one.init(jax.random.key(0), x), x)
  assert conv_calls == [1, 1]


def test_conv_without_bias_in_bfloat16():
  x = _rng(5).normal(size=(1, 3, 3, 2)).astype(np.float32)
  conv = layers.Conv(2, (3, 3), padding="SAME", use_bias=False, dtype=jnp.bfloat16)
  variables = conv.init(jax.random.key(1), x)
  assert set(variables["params"]) == {"kernel"} and variables["params"]["kernel"].dtype == jnp.float32
  got = conv.apply(variables, x)
  assert got.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(got, np.float32), _conv_ref(x, variables["params"]["kernel"], 1, 1),
                             rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("cin,features", [(3, 4), (4, 3)])
def test_conv_groups_must_divide_both_channel_counts(cin, features):
  with pytest.raises(ValueError, match="^" + re.escape(
      f"Conv with groups=2 needs input ({cin}) and output ({features}) channels divisible by the group count.")):
    layers.Conv(features, (1, 1), groups=2).init(jax.random.key(0), jnp.ones((1, 2, 2, cin)))


def test_conv_bn_act_by_hand(conv_calls):
  x = _rng(6).normal(size=(2, 5, 5, 4)).astype(np.float32)
  block = layers.ConvBNAct(4, kernel=3, stride=2, padding=1, groups=2, bn_epsilon=0.5,
                           kernel_init=nn.initializers.normal(1.0))
  variables = block.init(jax.random.key(2), x, train=False)
  assert set(variables["params"]) == {"conv", "bn"} and set(variables["params"]["conv"]) == {"kernel"}
  w = variables["params"]["conv"]["kernel"]
  assert w.shape == (3, 3, 2, 4) and float(np.std(w)) > 0.5  # the given initialiser
  assert conv_calls and set(conv_calls) == {2}  # nn.Conv with the project's convolution, grouped
  y = np.asarray(_conv_ref(x, w, 2, 1, 2))
  np.testing.assert_allclose(block.apply(variables, x, train=False), np.maximum(y / np.sqrt(1.5), 0), rtol=1e-4,
                             atol=1e-5)
  got, _ = block.apply(variables, x, train=True, mutable=["batch_stats"])
  norm = (y - y.mean(axis=(0, 1, 2))) / np.sqrt(y.var(axis=(0, 1, 2)) + 0.5)
  np.testing.assert_allclose(got, np.maximum(norm, 0), rtol=1e-4, atol=1e-4)


def test_conv_bn_act_without_bn_has_a_bias_and_no_act_with_act_none():
  x = _rng(7).normal(size=(1, 3, 4, 2)).astype(np.float32)
  block = layers.ConvBNAct(3, kernel=(1, 3), padding="VALID", bn=False, act=None, bias_init=nn.initializers.ones,
                           kernel_init=nn.initializers.normal(1.0), bn_zero_init=True)
  variables = block.init(jax.random.key(3), x, train=True)
  assert set(variables) == {"params"} and set(variables["params"]["conv"]) == {"kernel", "bias"}
  w = variables["params"]["conv"]["kernel"]
  assert w.shape == (1, 3, 2, 3)
  got = block.apply(variables, x, train=True)
  np.testing.assert_allclose(got, _conv_ref(x, w) + 1.0, rtol=1e-5, atol=1e-5)
  assert (np.asarray(got) < 0).any()  # no activation
  tanh = layers.ConvBNAct(3, kernel=1, act="tanh", bn=False)
  v = tanh.init(jax.random.key(3), x, train=True)
  np.testing.assert_allclose(tanh.apply(v, x, train=True),
                             np.tanh(_conv_ref(x, v["params"]["conv"]["kernel"])), rtol=1e-5, atol=1e-6)


def test_conv_bn_act_zero_init_and_bfloat16():
  x = _rng(8).normal(size=(1, 3, 3, 2)).astype(np.float32)
  block = layers.ConvBNAct(2, bn_zero_init=True, dtype=jnp.bfloat16)
  variables = block.init(jax.random.key(4), x, train=False)
  np.testing.assert_array_equal(variables["params"]["bn"]["scale"], 0.0)
  assert variables["params"]["conv"]["kernel"].dtype == jnp.float32
  assert variables["params"]["bn"]["scale"].dtype == jnp.float32
  assert block.apply(variables, x, train=False).dtype == jnp.bfloat16


def test_classifier_dropout_only_in_training_and_float32_logits():
  x = jnp.ones((4, 64), jnp.bfloat16)
  head = layers.Classifier(3, dropout=0.5, bias_init=nn.initializers.ones, dtype=jnp.bfloat16)
  variables = head.init(jax.random.key(5), x, train=False)
  assert set(variables["params"]) == {"fc"}
  kernel = variables["params"]["fc"]["kernel"]
  assert kernel.dtype == jnp.float32 and kernel.shape == (64, 3)
  ev = head.apply(variables, x, train=False)
  assert ev.dtype == jnp.float32
  np.testing.assert_allclose(ev, np.asarray(kernel).sum(0)[None].repeat(4, 0) + 1.0, rtol=2e-2, atol=2e-2)
  tr = head.apply(variables, x, train=True, rngs={"dropout": jax.random.key(6)})
  assert not np.allclose(tr, ev, atol=1e-2)
  plain = layers.Classifier(3)
  v = plain.init(jax.random.key(5), x, train=True)
  np.testing.assert_array_equal(plain.apply(v, x, train=True), plain.apply(v, x, train=False))


def test_adaptive_weights_are_torchs_windows():
  np.testing.assert_allclose(layers._adaptive_weights(5, 3), [[0.5, 0.5, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0],
                                                              [0, 0, 0, 0.5, 0.5]], rtol=1e-6)
  np.testing.assert_allclose(layers._adaptive_weights(2, 3), [[1, 0], [0.5, 0.5], [0, 1]])
  w = layers._adaptive_weights(4, 2)
  assert w.dtype == jnp.float32
  np.testing.assert_allclose(w, [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_adaptive_avg_pool_sizes():
  x = jnp.asarray(_rng(9).normal(size=(1, 4, 6, 2)), jnp.float32)
  assert layers.adaptive_avg_pool(x, (4, 6)) is x
  got = layers.adaptive_avg_pool(x, (2, 3))
  a = np.asarray(x)
  want = a.reshape(1, 2, 2, 3, 2, 2).mean(axis=(2, 4))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  sq = layers.adaptive_avg_pool(x, 2)
  np.testing.assert_allclose(sq, a.reshape(1, 2, 2, 2, 3, 2).mean(axis=(2, 4)), rtol=1e-5)
  assert layers.adaptive_avg_pool(x.astype(jnp.bfloat16), 2).dtype == jnp.bfloat16


def test_lrn_by_hand_with_groups_edges_and_the_sown_term():
  a = np.array([[[[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 2.0]]]], np.float32)  # (1, 1, 2, 4)
  got, state = layers.LocalResponseNorm(3, 2.0, 0.1, 0.5, groups=2).apply({}, jnp.asarray(a),
                                                                         mutable=["intermediates"])
  # Groups {0, 1} and {2, 3}: every window is its whole group, clipped at both edges.
  sums = np.array([[5.0, 5.0, 25.0, 25.0], [1.0, 1.0, 4.0, 4.0]])
  np.testing.assert_allclose(got[0, 0], a[0, 0] / np.sqrt(2.0 + 0.1 * sums), rtol=1e-6)
  assert state["intermediates"]["norm_term"][0] == pytest.approx(np.median(0.1 * sums) / 2.0, rel=1e-6)
  got = layers.LocalResponseNorm(4, 1.0, 1.0, 1.0).apply({}, jnp.asarray(a[:, :, :1]), mutable=["intermediates"])[0]
  # Size 4: one channel below, two above, clipped at the edges.
  np.testing.assert_allclose(got[0, 0, 0], np.array([1, 2, 3, 4]) / (1.0 + np.array([14.0, 30.0, 29.0, 25.0])),
                             rtol=1e-6)


def test_avg_pool_with_a_stride_unlike_its_window():
  x = jnp.arange(35.0).reshape(1, 5, 7, 1)
  a = np.asarray(x)[0, :, :, 0]
  want = [[a[2 * i:2 * i + 3, 2 * j:2 * j + 3].mean() for j in range(3)] for i in range(2)]
  np.testing.assert_allclose(layers.avg_pool(x, 3, 2)[0, :, :, 0], want, rtol=1e-6)
  want = [[a[3 * i:3 * i + 2, 3 * j:3 * j + 2].mean() for j in range(2)] for i in range(2)]
  np.testing.assert_allclose(layers.avg_pool(x, 2, 3)[0, :, :, 0], want, rtol=1e-6)


def test_grouped_conv_is_one_convolution_per_group():
  x = _rng(10).normal(size=(1, 3, 3, 4)).astype(np.float32)
  conv = layers.Conv(4, (1, 1), padding=1, groups=2, use_bias=False)
  variables = conv.init(jax.random.key(7), x)
  w = np.asarray(variables["params"]["kernel"])  # (1, 1, 2, 4)
  got = np.asarray(conv.apply(variables, x))
  assert got.shape == (1, 5, 5, 4)
  np.testing.assert_array_equal(got[0, 0], 0.0)  # the integer padding, on every side
  np.testing.assert_array_equal(got[0, :, -1], 0.0)
  np.testing.assert_allclose(got[0, 1:4, 1:4, :2], x[0, :, :, :2] @ w[0, 0, :, :2], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got[0, 1:4, 1:4, 2:], x[0, :, :, 2:] @ w[0, 0, :, 2:], rtol=1e-5, atol=1e-6)


def test_conv_one_group_is_the_fused_convolution(monkeypatch):
  passed = []
  real = layers.cpu_gradients.conv_general_dilated

  def spy(*args, **kwargs):
    passed.append(kwargs.get("feature_group_count"))
    return real(*args, **kwargs)

  monkeypatch.setattr(layers.cpu_gradients, "conv_general_dilated", spy)
  conv = layers.Conv(2, (1, 1))
  x = jnp.ones((1, 2, 2, 2))
  conv.apply(conv.init(jax.random.key(0), x), x)
  assert passed == [1, 1]


def test_conv_bias_in_bfloat16():
  x = _rng(11).normal(size=(1, 2, 2, 2)).astype(np.float32)
  conv = layers.Conv(3, (1, 1), padding=1, dtype=jnp.bfloat16, bias_init=nn.initializers.constant(0.5))
  variables = conv.init(jax.random.key(8), x)
  assert variables["params"]["bias"].dtype == jnp.float32
  got = conv.apply(variables, x)
  assert got.dtype == jnp.bfloat16 and got.shape == (1, 4, 4, 3)
  np.testing.assert_array_equal(np.asarray(got[0, 0], np.float32), 0.5)
  w = np.asarray(variables["params"]["kernel"])[0, 0]
  np.testing.assert_allclose(np.asarray(got[0, 1:3, 1:3], np.float32), x[0] @ w + 0.5, rtol=3e-2, atol=3e-2)


def test_conv_bn_act_integer_padding_bias_and_dtype_without_bn():
  x = _rng(12).normal(size=(1, 2, 2, 2)).astype(np.float32)
  block = layers.ConvBNAct(3, kernel=1, padding=2, bn=False, act=None, dtype=jnp.bfloat16,
                           bias_init=nn.initializers.constant(0.25))
  variables = block.init(jax.random.key(9), x, train=False)
  got = block.apply(variables, x, train=False)
  assert got.dtype == jnp.bfloat16 and got.shape == (1, 6, 6, 3)
  np.testing.assert_array_equal(np.asarray(got[0, :2], np.float32), 0.25)
  np.testing.assert_array_equal(np.asarray(got[0, :, 4:], np.float32), 0.25)
  w = np.asarray(variables["params"]["conv"]["kernel"])[0, 0]
  np.testing.assert_allclose(np.asarray(got[0, 2:4, 2:4], np.float32), x[0] @ w + 0.25, rtol=3e-2, atol=3e-2)


def test_classifier_computes_in_its_dtype_and_returns_float32():
  head = layers.Classifier(1, dtype=jnp.bfloat16)
  x = jnp.ones((1, 2), jnp.bfloat16)
  variables = {"params": {"fc": {"kernel": jnp.asarray([[1.0], [2.0 ** -9]]), "bias": jnp.zeros(1)}}}
  got = head.apply(variables, x, train=False)
  assert got.dtype == jnp.float32
  assert float(got[0, 0]) == 1.0  # 1 + 2^-9 rounds to 1 in bfloat16


def test_classifier_dropout_zeroes_or_doubles_in_training_only():
  head = layers.Classifier(8, dropout=0.5, kernel_init=lambda key, shape, dtype: jnp.eye(8, dtype=dtype))
  x = jnp.ones((2, 8))
  variables = head.init(jax.random.key(10), x, train=False)  # the given initialiser: an identity head
  np.testing.assert_array_equal(head.apply(variables, x, train=False), 1.0)
  tr = np.asarray(head.apply(variables, x, train=True, rngs={"dropout": jax.random.key(11)}))
  assert set(np.unique(tr)) == {0.0, 2.0}


def test_every_block_asks_its_initialisers_for_float32():
  asked = []

  def init(key, shape, dtype=None):
    asked.append(dtype)
    return jnp.zeros(shape, jnp.float32)

  x = jnp.ones((1, 2, 2, 2))
  layers.Conv(2, (1, 1), kernel_init=init, bias_init=init, dtype=jnp.bfloat16).init(jax.random.key(0), x)
  layers.ConvBNAct(2, kernel=1, bn=False, kernel_init=init, bias_init=init).init(jax.random.key(0), x, train=False)
  layers.Classifier(2, kernel_init=init, bias_init=init).init(jax.random.key(0), x.reshape(1, 8), train=False)
  assert asked == [jnp.float32] * 6
