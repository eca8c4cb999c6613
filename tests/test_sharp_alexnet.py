"""Sharp checks of alexnet_jax/models/alexnet.py on nets a few pixels wide: the forward pass against a
layer-by-layer computation from the same parameters (every field away from its default), the kernel
shapes of towers, halved kernels and a removed layer, and the paper's initialisation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from alexnet_jax.models import alexnet, layers

# Small nets: width 1/16 (paper: 6-16-24-24-16 kernels), a 3×3 conv1 at stride 1, 16-pixel inputs.
SMALL = dict(num_classes=5, width=0.0625, fc_dim=64, conv1_kernel=3, conv1_stride=1, conv1_padding=1,
             lrn_alpha=0.05, lrn_k=1.5, lrn_beta=0.6, lrn_size=3, dropout=0.5, init_scheme="he")
PAPER = ((96, 11, None, False), (256, 5, 2, True), (384, 3, 1, False), (384, 3, 1, True), (256, 3, 1, True))
OWT = ((64, 11, None, False), (192, 5, 2, False), (384, 3, 1, False), (256, 3, 1, False), (256, 3, 1, False))


def _model(**kw):
  return alexnet.AlexNet(**{**SMALL, **kw})


def _x(res=16, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(2, res, res, 3)), jnp.float32)


def _init(model, x):
  return jax.jit(lambda x: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x))(x)["params"]




def _reference(m: alexnet.AlexNet, params, x):
  """The net computed layer by layer from `params`, with lax convolutions and the fields of `m`."""
  act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[m.act]
  convs = {"paper": PAPER, "owt": OWT}[m.variant]
  for i, (_, kernel, pad, towered) in enumerate(convs, start=1):
    if i == 1:
      stride, pad = m.conv1_stride, m.conv1_padding
    else:
      stride = 1
    if i != m.remove_conv:
      p = params[f"conv{i}"]
      groups = m.towers if towered else 1
      assert p["kernel"].shape[:2] == ((m.conv1_kernel,) * 2 if i == 1 else (kernel, kernel))
      x = jax.lax.conv_general_dilated(x, p["kernel"], (stride, stride), [(pad, pad)] * 2,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups,
                                       precision="highest") + p["bias"]
      x = act(x)
      if m.lrn and i in (1, 2):
        x = layers.LocalResponseNorm(m.lrn_size, m.lrn_k, m.lrn_alpha, m.lrn_beta,
                                     m.towers if m.tower_lrn else 1).apply({}, x, mutable=["intermediates"])[0]
    if i in (1, 2, 5):
      x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, m.pool_window, m.pool_window, 1),
                                (1, m.pool_stride, m.pool_stride, 1), "VALID")
  x = x.reshape(x.shape[0], -1)
  for name in ("fc6", "fc7"):
    x = act(x @ params[name]["kernel"] + params[name]["bias"])
  return x @ params["fc8"]["kernel"] + params["fc8"]["bias"]


def _shapes(model, res=16):
  v = jax.eval_shape(lambda x: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x),
                     jax.ShapeDtypeStruct((2, res, res, 3), jnp.float32))["params"]
  return {k: tuple(p["kernel"].shape) for k, p in v.items()}


def _random_params(model, x, seed=3):
  v = jax.eval_shape(lambda x: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x), x)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(scale=0.3, size=s.shape), jnp.float32), v["params"])


def _check_forward(m, params, x):
  """The net, in eval and in train mode, and the layer-by-layer computation, as one compiled program."""
  def run(p, x):
    return (m.apply({"params": p}, x), m.apply({"params": p}, x, train=True, rngs={"dropout": jax.random.key(2)}),
            _reference(m, p, x))

  ev, tr, want = jax.jit(run)(params, x)
  assert ev.shape == (2, 5) and ev.dtype == jnp.float32
  assert float(jnp.abs(want).std()) > 0
  np.testing.assert_allclose(ev, want, rtol=2e-4, atol=2e-4 * float(jnp.abs(want).max()))
  if m.dropout > 0:
    assert not np.allclose(tr, ev, rtol=1e-3)
  else:
    np.testing.assert_allclose(tr, ev, rtol=1e-6)


def test_paper_init_and_forward_with_towers_grouped_lrn_and_other_settings():
  """Paper init (Gaussian, biases 1 in conv2, conv4, conv5, fc6, fc7); two towers with LRN inside each."""
  m = _model(init_scheme="paper", init_std=3.0, tower_lrn=True, lrn_size=4, act="tanh", pool_window=2,
             pool_stride=2, conv1_kernel=5, conv1_padding=2)
  x = _x()
  params = _init(m, x)
  for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
    b = np.asarray(params[name]["bias"])
    assert (b == (1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0)).all(), name
  k = np.concatenate([np.asarray(params[n]["kernel"]).ravel() for n in ("conv2", "conv3", "conv4")])
  assert abs(k.std() / 3.0 - 1) < 0.05
  for name in ("fc6", "fc7", "fc8"):  # a few weights each, far from any fan-scaled initialiser's
    assert abs(np.asarray(params[name]["kernel"]).std() / 3.0 - 1) < 0.5, name
  _check_forward(m, params, x)


def test_forward_with_lrn_across_towers_a_removed_layer_and_a_strided_conv1():
  m = _model(remove_conv=3, conv1_stride=2, conv1_padding=0, lrn_beta=0.9)
  x = _x(32)
  _check_forward(m, _random_params(m, x), x)


def test_forward_of_the_one_weird_trick_net_without_lrn_or_dropout():
  m = _model(variant="owt", towers=1, lrn=False, dropout=0.0, remove_conv=1, pool_window=2)
  x = _x()
  _check_forward(m, _random_params(m, x), x)


def test_he_init_sets_every_bias_to_zero():
  m = _model(init_scheme="he", init_std=0.3)
  for name in ("conv1", "conv2", "fc6", "fc8"):
    kinit, binit = m._inits(name)
    assert binit is nn.initializers.zeros
    w = np.asarray(kinit(jax.random.key(0), (3, 3, 8, 32)))
    assert abs(w.std() / np.sqrt(2 / (3 * 3 * 32)) - 1) < 0.1  # fan_out
  kinit, binit = _model(init_scheme="paper", init_std=0.3)._inits("conv3")
  assert binit is nn.initializers.zeros
  assert abs(np.asarray(kinit(jax.random.key(0), (40, 50))).std() / 0.3 - 1) < 0.05
  assert _model(init_scheme="paper")._inits("fc7")[1] is nn.initializers.ones


def test_paper_kernel_shapes_with_towers_and_their_widths():
  assert _shapes(_model()) == {"conv1": (3, 3, 3, 6), "conv2": (5, 5, 3, 16), "conv3": (3, 3, 16, 24),
                               "conv4": (3, 3, 12, 24), "conv5": (3, 3, 12, 16), "fc6": (16, 4), "fc7": (4, 4),
                               "fc8": (4, 5)}


def test_one_gpu_net_halves_conv1_to_conv4():
  assert _shapes(_model(towers=1, half_kernels=True, width=0.125)) == {
      "conv1": (3, 3, 3, 6), "conv2": (5, 5, 6, 16), "conv3": (3, 3, 16, 24), "conv4": (3, 3, 24, 24),
      "conv5": (3, 3, 24, 32), "fc6": (32, 8), "fc7": (8, 8), "fc8": (8, 5)}


def test_removed_conv_is_absent_and_the_next_reads_the_one_before():
  shapes = _shapes(_model(remove_conv=4))
  assert "conv4" not in shapes and shapes["conv5"] == (3, 3, 12, 16)
  shapes = _shapes(_model(remove_conv=1, towers=1))
  assert "conv1" not in shapes and shapes["conv2"] == (5, 5, 3, 16)


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
  m = _model(dtype=jnp.bfloat16)
  x = jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32)
  params = jax.eval_shape(lambda x: m.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x), x)
  assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(params))
  out, state = jax.eval_shape(lambda p, x: m.apply(p, x, capture_intermediates=True, mutable=["intermediates"]),
                              params, x)
  assert out.dtype == jnp.float32
  inter = state["intermediates"]
  assert {k: inter[k]["__call__"][0].dtype for k in ("conv1", "lrn1", "fc6", "fc8")} == {
      "conv1": jnp.bfloat16, "lrn1": jnp.bfloat16, "fc6": jnp.bfloat16, "fc8": jnp.bfloat16}
  assert sorted(k for k in inter if k.startswith("lrn")) == ["lrn1", "lrn2"]


def test_module_fields_default_to_the_paper():
  m = alexnet.AlexNet()
  assert (m.variant, m.towers, m.lrn, m.lrn_size, m.lrn_k, m.lrn_alpha, m.lrn_beta, m.pool_window, m.pool_stride,
          m.conv1_kernel, m.conv1_stride, m.dropout, m.init_std) == (
      "paper", 2, True, 5, 2.0, 1e-4, 0.75, 3, 2, 11, 4, 0.5, 0.01)
