"""`alexnet_jax.models.cpu_gradients`: the CPU formulations compute JAX's own functions and derivatives."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax import model_choices
from alexnet_jax.models import build_model, cpu_gradients, layers
from alexnet_jax.configs import resnet as resnet_config


def _ties(shape, seed=0):
  """ReLU'd small integers: most windows hold several equal maxima (zeros), as after a ReLU."""
  rng = np.random.default_rng(seed)
  return jnp.asarray(np.maximum(rng.integers(-3, 3, shape), 0).astype(np.float32))


@pytest.mark.parametrize("shape,window,stride,padding,ceil_mode", [
    ((2, 13, 13, 4), 3, 2, "VALID", False),          # AlexNet's overlapping pool
    ((2, 16, 16, 3), 3, 2, ((1, 1), (1, 1)), False),  # the ResNet stem
    ((2, 15, 15, 3), 3, 2, "VALID", True),            # GoogLeNet / ZFNet ceil mode
    ((2, 8, 8, 5), 2, 2, "VALID", False),             # VGG
    ((1, 9, 9, 2), 3, 1, ((1, 1), (1, 1)), False),    # the inception pool branch
    ((2, 10, 10, 2), 3, 2, "SAME", False),
])
def test_max_pool_values_and_gradient_are_xla_select_and_scatter_bit_for_bit(shape, window, stride, padding,
                                                                             ceil_mode):
  x = _ties(shape)
  reference = lambda x: nn.max_pool(x, (window, window), (stride, stride),  # noqa: E731
                                    padding=layers.ceil_mode_pads(shape, window, stride) if ceil_mode else padding)
  ours = lambda x: layers.max_pool(x, window, stride, padding, ceil_mode)  # noqa: E731
  y_ref, vjp_ref = jax.vjp(reference, x)
  y, vjp = jax.vjp(ours, x)
  g = jnp.asarray(np.random.default_rng(1).normal(size=y.shape).astype(np.float32))
  np.testing.assert_array_equal(y, y_ref)
  # Ties go to the first maximum of each window and overlapping shares add in window order.
  np.testing.assert_array_equal(jax.jit(lambda g: vjp(g)[0])(g), vjp_ref(g)[0])


def _max_abs(x) -> float:
  """max |x|, in numpy: op by op, jnp compiles a small program per shape."""
  return float(np.abs(np.asarray(x)).max())


def _off_cpu(monkeypatch):
  """Traces as on a GPU: `_active` is what every formulation asks, and it looks at the backend only."""
  monkeypatch.setattr(cpu_gradients, "_active", lambda: False)


def test_max_pool_gradient_is_ours_on_cpu_and_jax_elsewhere(monkeypatch):
  x = _ties((1, 9, 9, 2))
  ours = jax.make_jaxpr(jax.grad(lambda x: layers.max_pool(x, 3, 2).sum()))(x)
  _off_cpu(monkeypatch)
  plain = jax.make_jaxpr(jax.grad(lambda x: layers.max_pool(x, 3, 2).sum()))(x)
  assert "select_and_scatter_add" in str(plain) or "select_and_gather_add" in str(plain)
  assert "custom_vjp" in str(ours) and "select_and" not in str(ours)


@pytest.mark.parametrize("stride,padding", [(1, "VALID"), (2, ((0, 0), (0, 0))), (2, "SAME")])
def test_pointwise_conv_gradients_are_matrix_products_equal_to_jax(stride, padding):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 9, 9, 16)).astype(np.float32))
  grads = {}
  for name, conv in (("jax", jax.lax.conv_general_dilated), ("ours", cpu_gradients.conv_general_dilated)):
    module = nn.Conv(8, (1, 1), (stride, stride), padding=padding, conv_general_dilated=conv)
    variables = module.init(jax.random.key(0), x)
    loss = lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))  # noqa: E731
    grads[name] = (module.apply(variables, x), jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, x))
    if name == "ours":
      assert "dot_general" in str(jax.make_jaxpr(jax.grad(loss))(variables, x))
  (y_jax, (dv_jax, dx_jax)), (y, (dv, dx)) = grads["jax"], grads["ours"]
  # Sums of the same terms in another order: rounding only. Strided positions get exactly zero.
  np.testing.assert_allclose(y, y_jax, rtol=1e-5, atol=1e-6 * _max_abs(y_jax))
  np.testing.assert_allclose(dv["params"]["bias"], dv_jax["params"]["bias"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dx, dx_jax, rtol=1e-5, atol=1e-6 * _max_abs(dx_jax))
  np.testing.assert_array_equal(np.asarray(dx) == 0, np.asarray(dx_jax) == 0)
  want = dv_jax["params"]["kernel"]
  np.testing.assert_allclose(dv["params"]["kernel"], want, rtol=1e-5, atol=1e-6 * _max_abs(want))


def test_stored_is_a_barrier_on_cpu_only(monkeypatch):
  x = jnp.arange(6.0).reshape(2, 3) - 0.5
  f = lambda x: cpu_gradients.stored(jnp.maximum(x, 1.0)) * 2  # noqa: E731
  assert "optimization_barrier" in str(jax.make_jaxpr(f)(x))
  np.testing.assert_array_equal(jax.jit(f)(x), jnp.maximum(x, 1.0) * 2)
  np.testing.assert_array_equal(jax.grad(lambda x: f(x).sum())(x), (x > 1.0) * 2.0)
  _off_cpu(monkeypatch)  # a new function: traces are cached per function
  assert "optimization_barrier" not in str(jax.make_jaxpr(lambda x: cpu_gradients.stored(x) * 2)(x))


@pytest.mark.parametrize("shape,kernel,stride,padding", [
    ((2, 7, 7, 16), 3, 1, ((1, 1), (1, 1))),   # ResNet-50's last stages at batch 8: few positions
    ((2, 9, 9, 8), 3, 2, ((1, 1), (1, 1))),    # strided, odd size
    ((1, 13, 13, 6), 5, 1, "SAME"),
    ((2, 10, 10, 3), 7, 2, ((3, 3), (3, 3))),  # a stem
    ((1, 8, 8, 4), 3, 1, "VALID"),
    ((1, 6, 6, 4), 1, 1, ((1, 1), (1, 1))),     # a padded 1×1 kernel
    ((2, 16, 16, 128), 3, 2, ((1, 1), (1, 1))),  # strided with 128 channels: products at any size
])
def test_patch_convolutions_equal_jax_values_and_gradients(shape, kernel, stride, padding):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=shape).astype(np.float32))
  k = jnp.asarray(rng.normal(size=(kernel, kernel, shape[-1], 5)).astype(np.float32))
  g = None
  out = {}
  for name, conv in (("jax", jax.lax.conv_general_dilated), ("ours", cpu_gradients.conv_general_dilated)):
    f = lambda x, k, conv=conv: conv(x, k, (stride, stride), padding,  # noqa: E731
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    g = jnp.asarray(rng.normal(size=jax.eval_shape(f, x, k).shape).astype(np.float32)) if g is None else g
    # The value and both cotangents in one compiled program: op by op, our formulation's many small
    # operations would each compile on their own (about 2 s of CPU per case).
    out[name] = jax.jit(lambda x, k, g, f=f: (lambda y, vjp: (y, *vjp(g)))(*jax.vjp(f, x, k)))(x, k, g)
    if name == "ours":
      jaxpr = str(jax.make_jaxpr(jax.grad(lambda x, k: jnp.vdot(f(x, k), g), (0, 1)))(x, k))
      assert "conv_general_dilated" not in jaxpr and "dot_general" in jaxpr
  for a, b in zip(out["ours"], out["jax"]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6 * _max_abs(b))


def test_large_maps_and_other_convolutions_keep_jax_convolution(monkeypatch):
  big = jnp.ones((8, 16, 16, 8))  # 2,048 output positions, stride 1: YNNPACK's convolution is faster
  small = jnp.ones((1, 6, 6, 4))
  strided = jnp.ones((8, 32, 32, 8))  # strided, but with few input channels and 2,048 positions
  for x, kernel_shape, kwargs in ((big, (3, 3, 8, 4), {}), (big, (3, 3, 8, 4), {"rhs_dilation": (2, 2)}),
                                  (small, (3, 3, 2, 4), {"feature_group_count": 2}),
                                  (strided, (3, 3, 8, 16), {"window_strides": (2, 2)})):
    k = jnp.ones(kernel_shape)
    strides = kwargs.pop("window_strides", (1, 1))
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda k: cpu_gradients.conv_general_dilated(
        x, k, strides, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), **kwargs).sum()))(k))
    assert "conv_general_dilated" in jaxpr and "custom_vjp" not in jaxpr
  _off_cpu(monkeypatch)  # every formulation off: JAX's own convolution
  jaxpr = str(jax.make_jaxpr(lambda x, k: cpu_gradients.conv_general_dilated(
      x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))(small, jnp.ones((3, 3, 4, 2))))
  assert "conv_general_dilated" in jaxpr and "dot_general" not in jaxpr


def test_whole_model_gradients_equal_with_and_without_the_cpu_formulations(monkeypatch):
  # ResNet-50 with one bottleneck block per stage: every kind of layer it has (the stem pool, 1×1 kernels
  # with strides, projections, BatchNorm) in a quarter of its blocks (and of its compile time).
  monkeypatch.setitem(model_choices.RESNET_STAGES, 50, ("bottleneck", (1, 1, 1, 1)))
  config = resnet_config.get_config("depth=50,smoke")
  model = build_model(config.model, 10, jnp.float32)
  size = config.input.image_size
  x = jnp.asarray(np.random.default_rng(0).normal(size=(4, size, size, 3)).astype(np.float32))
  # Jitted: op by op, the initialisation would compile each of its operations (about 5 s more CPU).
  variables = jax.jit(lambda: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x[:1],
                                         train=False))()

  def grads():
    def loss(params):
      out, _ = model.apply({**variables, "params": params}, x, train=True, rngs={"dropout": jax.random.key(2)},
                           mutable=["batch_stats", "aux"])
      return jnp.sum(out ** 2)
    return jax.jit(jax.grad(loss))(variables["params"])

  ours = grads()
  _off_cpu(monkeypatch)
  theirs = grads()
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5 * _max_abs(b))
