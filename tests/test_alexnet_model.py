"""The paper AlexNet (Krizhevsky et al. 2012) as the configs build it: sizes, towers, LRN, init, ablations."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from alexnet_jax import models
from alexnet_jax.configs import alexnet
from alexnet_jax.errors import ConfigError


def _model(arg: str = "", num_classes: int = 1000):
  return models.build_model(alexnet.get_config(arg).model, num_classes)


def _shapes(arg: str = "", res: int = 227) -> dict[str, tuple[int, ...]]:
  model = _model(arg)
  v = jax.eval_shape(lambda k: model.init({"params": k, "dropout": k}, jnp.zeros((1, res, res, 3))),
                     jax.random.key(0))
  return {"/".join(k): tuple(x.shape) for k, x in traverse_util.flatten_dict(v["params"]).items()}


def test_paper_parameter_count_and_kernel_shapes():
  shapes = _shapes()
  assert sum(int(np.prod(s)) for s in shapes.values()) == 60_965_224
  # Groups only in conv2, conv4 and conv5: their kernels see half the channels (one tower's).
  assert shapes["conv1/kernel"] == (11, 11, 3, 96)
  assert shapes["conv2/kernel"] == (5, 5, 48, 256)
  assert shapes["conv3/kernel"] == (3, 3, 256, 384)
  assert shapes["conv4/kernel"] == (3, 3, 192, 384)
  assert shapes["conv5/kernel"] == (3, 3, 192, 256)
  # 227 → 55 → 27 → 13 → 6: fc6 sees 6·6·256 features.
  assert shapes["fc6/kernel"] == (9216, 4096)
  assert shapes["fc7/kernel"] == (4096, 4096) and shapes["fc8/kernel"] == (4096, 1000)


def test_one_tower_has_full_kernels():
  shapes = _shapes("towers=1")
  assert shapes["conv2/kernel"] == (5, 5, 96, 256)
  assert shapes["conv4/kernel"] == (3, 3, 384, 384) and shapes["conv5/kernel"] == (3, 3, 384, 256)


def test_feature_map_sizes_follow_the_paper():
  model = _model()
  x = jnp.zeros((1, 227, 227, 3))

  def run(k):
    variables = model.init({"params": k, "dropout": k}, x)
    return model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])[1]

  inter = jax.eval_shape(run, jax.random.key(0))["intermediates"]
  size = {name: inter[name]["__call__"][0].shape[1:] for name in ("conv1", "conv2", "conv3", "conv4", "conv5")}
  assert size == {"conv1": (55, 55, 96), "conv2": (27, 27, 256), "conv3": (13, 13, 384),
                  "conv4": (13, 13, 384), "conv5": (13, 13, 256)}
  # LRN follows conv1 and conv2 only, on their full channel counts.
  lrn = sorted(k for k in inter if k.startswith("lrn"))
  assert lrn == ["lrn1", "lrn2"]
  assert inter["lrn1"]["__call__"][0].shape[1:] == (55, 55, 96)
  assert inter["lrn2"]["__call__"][0].shape[1:] == (27, 27, 256)


def test_paper_init_is_gaussian_001_with_bias_one_in_conv2_4_5_fc6_fc7():
  model = _model("width=0.5")  # same scheme, quicker to initialise
  # Jitted: op by op, the initialisation would compile each of its operations (about 4 s more CPU).
  params = jax.jit(lambda key: model.init({"params": key, "dropout": key}, jnp.zeros((1, 227, 227, 3))))(
      jax.random.key(1))["params"]
  for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
    k = np.asarray(params[name]["kernel"])
    assert abs(k.mean()) < 1e-3 and abs(k.std() - 0.01) < 5e-4, (name, k.mean(), k.std())
    b = np.asarray(params[name]["bias"])
    expected = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
    assert (b == expected).all(), name


def test_remove_conv_drops_exactly_that_layer():
  shapes = _shapes("remove_conv=3")
  assert "conv3/kernel" not in shapes
  # conv4 now reads conv2's 256 channels in two towers.
  assert shapes["conv4/kernel"] == (3, 3, 128, 384)


@functools.cache
def _ablation_base() -> tuple[jax.Array, dict]:
  """The ablations' input and the quarter-width paper net's variables, drawn once (jitted: op by op
  the initialisation would compile each of its operations)."""
  x = jax.random.normal(jax.random.key(2), (2, 227, 227, 3)) * 50
  base = _model("width=0.25")
  return x, jax.jit(lambda key: base.init({"params": key, "dropout": key}, x))(jax.random.key(3))


@pytest.mark.parametrize("arg", ["overlap=False", "act=tanh", "lrn=False"])
def test_ablations_keep_the_parameters_and_change_the_function(arg):
  x, variables = _ablation_base()
  base, other = _model("width=0.25"), _model(f"width=0.25,{arg}")
  assert jax.tree.structure(variables) == jax.tree.structure(
      jax.eval_shape(lambda k: other.init({"params": k, "dropout": k}, x), jax.random.key(3)))
  a, b = base.apply(variables, x), other.apply(variables, x)
  assert a.shape == b.shape == (2, 1000)
  assert not np.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_overlapping_pool_is_3x3_stride_2_and_the_ablation_2x2():
  assert (alexnet.get_config("").model.pool_window, alexnet.get_config("").model.pool_stride) == (3, 2)
  cfg = alexnet.get_config("overlap=False").model
  assert (cfg.pool_window, cfg.pool_stride) == (2, 2)


def test_one_gpu_net_halves_conv1_to_conv4_and_keeps_conv5_and_fc():
  """The paper's one-GPU comparison net (Sec. 3.2 and its footnote): 48-128-192-192 kernels in one tower,
  conv5 256 and the FC layers 4096, so it has about as many parameters as the two-tower net."""
  shapes = _shapes("one_gpu")
  assert shapes["conv1/kernel"] == (11, 11, 3, 48)
  assert shapes["conv2/kernel"] == (5, 5, 48, 128)
  assert shapes["conv3/kernel"] == (3, 3, 128, 192)
  assert shapes["conv4/kernel"] == (3, 3, 192, 192)
  assert shapes["conv5/kernel"] == (3, 3, 192, 256)
  assert shapes["fc6/kernel"] == (9216, 4096) and shapes["fc7/kernel"] == (4096, 4096)
  # Counted by hand: kernels + biases, layer by layer.
  by_hand = [11 * 11 * 3 * 48 + 48, 5 * 5 * 48 * 128 + 128, 3 * 3 * 128 * 192 + 192, 3 * 3 * 192 * 192 + 192,
             3 * 3 * 192 * 256 + 256, 9216 * 4096 + 4096, 4096 * 4096 + 4096, 4096 * 1000 + 1000]
  total = sum(int(np.prod(s)) for s in shapes.values())
  assert total == sum(by_hand) == 59_798_312
  assert abs(total / 60_965_224 - 1) < 0.02  # within 2% of the two-tower net
  c = alexnet.get_config("one_gpu").model
  assert (c.towers, c.half_kernels) == (1, True)


def test_one_gpu_with_two_towers_is_a_config_error():
  with pytest.raises(ConfigError, match="one_gpu"):
    alexnet.get_config("one_gpu,towers=2")
