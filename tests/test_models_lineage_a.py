"""ZFNet, VGG, GoogLeNet and SqueezeNet: shapes, dtypes, parameter counts, aux heads, configs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from alexnet_jax.models import build_model, googlenet, squeezenet, vgg, zfnet
from alexnet_jax.configs import googlenet as googlenet_config
from alexnet_jax.configs import squeezenet as squeezenet_config
from alexnet_jax.configs import vgg as vgg_config
from alexnet_jax.configs import zfnet as zfnet_config


def param_count(module, size: int = 224) -> int:
  init = lambda: module.init({"params": jax.random.key(0)}, jnp.zeros((1, size, size, 3)), train=False)
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(jax.eval_shape(init)["params"]))


# torchvision's counts at 1000 classes (sum of numel over parameters).
@pytest.mark.parametrize("depth,bn,expected", [
    (11, False, 132_863_336), (13, False, 133_047_848), (16, False, 138_357_544), (19, False, 143_667_240),
    (11, True, 132_868_840), (16, True, 138_365_992),
])
def test_vgg_param_counts(depth, bn, expected):
  assert param_count(vgg.VGG(depth=depth, bn=bn)) == expected


def test_other_param_counts():
  assert param_count(squeezenet.SqueezeNet(version="1_0")) == 1_248_424
  assert param_count(squeezenet.SqueezeNet(version="1_1")) == 1_235_496
  assert param_count(googlenet.GoogLeNet(aux_logits=False)) == 6_624_904
  # ZFNet: 9216 = 256×6×6 inputs to fc6 means the paper's 224 → 110 → 55 → 26 → 13 → 6 geometry.
  shapes = jax.eval_shape(lambda: zfnet.ZFNet().init(jax.random.key(0), jnp.zeros((1, 224, 224, 3))))
  assert shapes["params"]["fc6"]["kernel"].shape == (9216, 4096)


def smoke_model(config_module, arg: str, num_classes: int = 10):
  cfg = config_module.get_config(arg)
  return cfg, build_model(cfg.model, num_classes, jnp.float32)


SMOKES = [(zfnet_config, "smoke"), (vgg_config, "smoke,depth=11"), (vgg_config, "smoke,depth=11,bn=True"),
          (googlenet_config, "smoke"), (googlenet_config, "smoke,variant=paper"),
          (squeezenet_config, "smoke"), (squeezenet_config, "smoke,version=1_1")]


@pytest.mark.parametrize("config_module,arg", SMOKES)
def test_smoke_models_shapes_and_dtypes(config_module, arg):
  """float32 parameters and float32 logits whatever the compute dtype (checked abstractly: no compute)."""
  cfg, model = smoke_model(config_module, arg)
  assert cfg.dataset == "embedded" and cfg.input.image_size == 64
  x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
  variables = jax.eval_shape(lambda im: model.init({"params": jax.random.key(0)}, im, train=False), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
  bf16 = build_model(cfg.model, 10, jnp.bfloat16)
  logits = jax.eval_shape(lambda v, im: bf16.apply(v, im, train=False), variables, x)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32


def test_googlenet_aux_only_in_training():
  """Aux heads have parameters from init on but are sown only in training (checked abstractly)."""
  model = googlenet.GoogLeNet(num_classes=5, width=0.125)
  x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
  variables = jax.eval_shape(lambda im: model.init({"params": jax.random.key(0)}, im, train=False), x)
  assert "aux1" in variables["params"] and "aux2" in variables["params"]
  _, state = jax.eval_shape(lambda v, im: model.apply(v, im, train=False, mutable=["aux"]), variables, x)
  assert "aux" not in state
  train_apply = lambda v, im: model.apply(v, im, train=True, mutable=["aux", "batch_stats"],
                                          rngs={"dropout": jax.random.key(1)})
  _, state = jax.eval_shape(train_apply, variables, x)
  aux = state["aux"]["logits"]
  assert len(aux) == 2 and all(a.shape == (2, 5) and a.dtype == jnp.float32 for a in aux)
  no_aux = googlenet.GoogLeNet(num_classes=5, width=0.125, aux_logits=False)
  assert "aux1" not in jax.eval_shape(lambda im: no_aux.init(jax.random.key(0), im), x)["params"]


def test_googlenet_paper_options_change_the_network():
  paper = googlenet.GoogLeNet(bn=False, branch3_kernel=5, lrn=True, width=0.25)
  v = jax.eval_shape(lambda: paper.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))
  assert "batch_stats" not in v
  assert v["params"]["inception3a"]["branch3"]["conv"]["kernel"].shape[:2] == (5, 5)
  assert "bias" in v["params"]["conv1"]["conv"]


def test_vgg_pool7_modes():
  x = jnp.zeros((1, 64, 64, 3))
  adaptive = jax.eval_shape(lambda: vgg.VGG(depth=11, width=0.25).init(jax.random.key(0), x))
  flat = jax.eval_shape(lambda: vgg.VGG(depth=11, width=0.25, pool7="flatten").init(jax.random.key(0), x))
  assert adaptive["params"]["fc6"]["kernel"].shape[0] == 128 * 7 * 7
  assert flat["params"]["fc6"]["kernel"].shape[0] == 128 * 2 * 2


@pytest.mark.parametrize("module,match", [
    (vgg.VGG(depth=12), "depth"), (vgg.VGG(pool7="max"), "pool7"),
    (squeezenet.SqueezeNet(version="2_0"), "version"), (googlenet.GoogLeNet(branch3_kernel=7), "branch3_kernel"),
])
def test_bad_model_fields_are_explained(module, match):
  with pytest.raises(ValueError, match=match):
    module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


@pytest.mark.parametrize("config_module,arg,match", [
    (vgg_config, "depth=12", "depth"), (vgg_config, "norm=bgr", "norm"), (squeezenet_config, "version=2", "version"),
    (googlenet_config, "variant=v3", "variant"), (zfnet_config, "lrn=maybe", "boolean"),
    (zfnet_config, "towers=2", "Unknown config argument"),
])
def test_bad_config_args_are_explained(config_module, arg, match):
  with pytest.raises(ValueError, match=match):
    config_module.get_config(arg)


def test_recipes():
  v = vgg_config.get_config("depth=19")
  assert (v.batch_size, v.num_epochs, v.optimizer.weight_decay, v.schedule.name) == (256, 74.0, 5e-4, "plateau")
  g = googlenet_config.get_config("")
  assert g.schedule.factor == 0.96 and g.schedule.step_epochs[:3] == (8.0, 16.0, 24.0)
  assert g.aux_loss_weight == 0.3 and g.input.train_crop == "inception"
  s = squeezenet_config.get_config("version=1_1")
  assert (s.schedule.name, s.schedule.base_lr, s.schedule.poly_power, s.batch_size) == ("poly", 0.04, 1.0, 512)
  z = zfnet_config.get_config("")
  assert (z.batch_size, z.num_epochs, z.schedule.base_lr) == (128, 70.0, 0.01)
  with pytest.raises(AttributeError):
    z.model.depth = 3  # locked: each family config holds only its own fields


@pytest.mark.parametrize("config_module,arg", [(zfnet_config, "smoke")])
def test_smoke_models_can_fit_a_batch(config_module, arg):
  """A few SGD steps on one fixed batch must lower the loss (gradients flow end to end)."""
  cfg, model = smoke_model(config_module, arg, num_classes=4)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((8, 64, 64, 3)), jnp.float32)
  y = jnp.arange(8) % 4
  params = jax.jit(lambda im: model.init({"params": jax.random.key(0)}, im, train=False))(x)["params"]
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  def loss_fn(p):
    logits = model.apply({"params": p}, x, train=False)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(p, o):
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, loss

  first = None
  for _ in range(20):
    params, opt, loss = step(params, opt)
    first = loss if first is None else first
  # The loss at the final parameters, from the compiled step (loss_fn op by op compiles each operation).
  _, _, final = step(params, opt)
  assert float(final) < 0.9 * float(first)
