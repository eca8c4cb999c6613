"""ResNet / ResNeXt / SE-ResNet: shapes, parameter counts, BatchNorm semantics, configs.

Everything runs at tiny widths and resolutions on CPU; parameter counts use
`jax.eval_shape`, so full-size models are never allocated.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from alexnet_jax import model_choices
from alexnet_jax.models import build_model
from alexnet_jax.models import resnet
from alexnet_jax.configs import resnet as resnet_config
from alexnet_jax.configs import resnext as resnext_config
from alexnet_jax.configs import senet as senet_config
from tests.conftest import REPO
from tests.conftest import subprocess_env

TINY = dict(width=1 / 16, stem="small")


def tiny_model(depth: int, **kw) -> resnet.ResNet:
  return resnet.ResNet(num_classes=5, depth=depth, **{**TINY, **kw})


def images(n: int = 4, size: int = 16, seed: int = 1) -> jax.Array:
  return jax.random.normal(jax.random.key(seed), (n, size, size, 3))


def tiny_variables(depth: int, **kw) -> dict:
  """`tiny_model(depth, **kw)` initialised (eagerly, as a user would) on `images()`.

  Built once per model and shared: the tests only read them. Eager JAX compiles each
  operation once per shape, so the tests below keep to `images()`' shape (4×16×16) and
  reuse what the first initialisation and forward compiled.
  """
  return _tiny_variables(depth, tuple(sorted(kw.items())))


@functools.cache
def _tiny_variables(depth: int, kw: tuple) -> dict:
  return tiny_model(depth, **dict(kw)).init(jax.random.key(0), images(), train=False)


def param_count(module: resnet.ResNet) -> int:
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False))
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes["params"]))


# torchvision's numbers (sum of numel over model.parameters(), 1000 classes); SE-ResNet-50
# is the SENet authors' Caffe model as ported in Cadene's pretrainedmodels.
@pytest.mark.parametrize("kw, expected", [
    (dict(depth=18), 11_689_512),
    (dict(depth=34), 21_797_672),
    (dict(depth=50), 25_557_032),
    (dict(depth=101), 44_549_160),
    (dict(depth=152), 60_192_808),
    (dict(depth=50, groups=32, width_per_group=4), 25_028_904),
    (dict(depth=50, se=True), 28_088_024),
])
def test_parameter_counts_match_references(kw, expected):
  assert param_count(resnet.ResNet(num_classes=1000, **kw)) == expected


def test_stride_placement_does_not_change_parameter_count():
  assert param_count(resnet.ResNet(depth=50, stride_on_3x3=False)) == 25_557_032


# Tests run tiny graphs once: a low XLA optimisation level cuts their CPU compile time ~40%.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def compile_fast(fn, *args):
  """`fn` jitted and compiled for `args` with cheap compiler settings."""
  return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)


def train_step(module: resnet.ResNet, tx: optax.GradientTransformation):
  """One SGD step with BN statistics mutable, as the trainer does it."""
  def step(params, batch_stats, opt_state, x, y):
    def loss_fn(p):
      logits, updates = module.apply({"params": p, "batch_stats": batch_stats}, x, train=True,
                                     mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates["batch_stats"]
    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss
  return step


# One compiled step per block kind: basic (ResNet-18) and bottleneck + SE; the plain bottleneck is
# the same code with the SE gate off. The bottleneck net keeps two blocks in its first stage and one
# in each other: every kind of block ResNet-50 has (projection shortcuts at strides 1 and 2, an
# identity shortcut) at under half its compile time. Every depth's whole step is traced below.
@pytest.mark.parametrize("kw", [dict(depth=18), dict(depth=50, se=True)], ids=["resnet18", "se_bottleneck"])
def test_one_sgd_step_runs_and_updates_params_and_stats(kw, monkeypatch):
  if kw["depth"] == 50:
    monkeypatch.setitem(model_choices.RESNET_STAGES, 50, ("bottleneck", (2, 1, 1, 1)))
  module = tiny_model(**kw)
  x, y = images(), jnp.arange(4) % 5
  variables = module.init(jax.random.key(0), x, train=False)
  assert len([k for k in variables["params"] if k.startswith("layer")]) == sum(resnet.stage_spec(kw["depth"])[1])
  tx = optax.sgd(0.1, momentum=0.9)
  args = (variables["params"], variables["batch_stats"], tx.init(variables["params"]), x, y)
  params, stats, _, loss = compile_fast(train_step(module, tx), *args)(*args)
  assert np.isfinite(float(loss))
  # Compared in numpy: eager jnp would compile two small programs per distinct parameter shape.
  moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), variables["params"],
                                 params)
  assert all(jax.tree_util.tree_leaves(moved)), "every parameter should receive a gradient"
  assert not np.allclose(stats["stem"]["bn"]["mean"], variables["batch_stats"]["stem"]["bn"]["mean"])


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_every_depth_forward_and_abstract_train_step(depth):
  """A real (eager) eval forward at every depth, and the full train step traced abstractly.

  Both block kinds run a compiled step above; every depth reuses the same blocks, so
  tracing their step (shapes and dtypes, no compile) keeps the file fast.
  """
  module = tiny_model(depth)
  x = images()
  variables = tiny_variables(depth)
  logits = module.apply(variables, x, train=False)
  assert logits.shape == (4, 5) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(logits)))
  tx = optax.sgd(0.1, momentum=0.9)
  out = jax.eval_shape(train_step(module, tx), variables["params"], variables["batch_stats"],
                       jax.eval_shape(tx.init, variables["params"]), x, jnp.zeros((4,), jnp.int32))
  new_params, new_stats, _, loss = out
  assert loss.shape == () and loss.dtype == jnp.float32
  same = jax.tree_util.tree_map(lambda a, b: a.shape == b.shape, variables["params"], new_params)
  assert all(jax.tree_util.tree_leaves(same))
  assert jax.tree_util.tree_structure(new_stats) == jax.tree_util.tree_structure(variables["batch_stats"])


def test_resnext_grouped_conv_forward():
  module = tiny_model(50, groups=4, width_per_group=16)
  x = images()
  variables = module.init(jax.random.key(0), x, train=False)
  # planes 4 at width 1/16 → inner width floor(4·16/64)·4 = 4, grouped in 4: kernel in-dim 1.
  assert variables["params"]["layer1_0"]["conv2"]["conv"]["kernel"].shape == (3, 3, 1, 4)
  assert module.apply(variables, x, train=False).shape == (4, 5)


def test_bottleneck_width_formula():
  assert resnet.bottleneck_width(64, 1, 64) == 64
  assert resnet.bottleneck_width(64, 32, 4) == 128     # ResNeXt-50 32×4d, stage 1
  assert resnet.bottleneck_width(512, 32, 4) == 1024   # stage 4
  assert resnet.bottleneck_width(64, 32, 8) == 256     # 32×8d


def capture(module: resnet.ResNet, variables, x, train: bool):
  """Logits, updated batch_stats and every submodule's output."""
  mutable = ["intermediates"] + (["batch_stats"] if train else [])
  return module.apply(variables, x, train=train, mutable=mutable, capture_intermediates=True)


def test_batchnorm_train_uses_batch_statistics_and_updates_running_stats():
  module = tiny_model(18)
  x = images()
  variables = tiny_variables(18)
  _, state = capture(module, variables, x, train=True)
  conv_out = state["intermediates"]["stem"]["conv"]["__call__"][0]
  bn_out = state["intermediates"]["stem"]["bn"]["__call__"][0]
  # Train mode normalises by the batch's own statistics: per channel mean 0, variance ≈ 1.
  np.testing.assert_allclose(np.mean(bn_out, axis=(0, 1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(np.var(bn_out, axis=(0, 1, 2)), 1.0, rtol=1e-2)
  # Running stats move 10% of the way (torch momentum 0.1) from their init (mean 0, var 1).
  stats = state["batch_stats"]["stem"]["bn"]
  np.testing.assert_allclose(stats["mean"], 0.1 * np.mean(conv_out, axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * np.var(conv_out, axis=(0, 1, 2)), rtol=1e-4)


def test_batchnorm_eval_uses_running_stats_and_is_per_example():
  module = tiny_model(18)
  x = images()
  variables = tiny_variables(18)
  # Non-trivial running statistics, so eval differs from the init's identity BN.
  _, updates = module.apply(variables, x * 3 + 1, train=True, mutable=["batch_stats"])
  variables = {"params": variables["params"], "batch_stats": updates["batch_stats"]}
  full = module.apply(variables, x, train=False)
  np.testing.assert_array_equal(full, module.apply(variables, x, train=False))  # deterministic
  # Train mode depends on the rest of the batch; eval mode does not. The same first two
  # examples with the other two replaced (same batch shape: nothing new to compile).
  others = x.at[2:].set(images(seed=2)[2:])
  np.testing.assert_allclose(module.apply(variables, others, train=False)[:2], full[:2], rtol=1e-5, atol=1e-5)
  train_full, _ = module.apply(variables, x, train=True, mutable=["batch_stats"])
  train_others, _ = module.apply(variables, others, train=True, mutable=["batch_stats"])
  assert not np.allclose(train_full[:2], train_others[:2], atol=1e-4)
  _, state = capture(module, variables, x, train=False)
  conv_out = state["intermediates"]["stem"]["conv"]["__call__"][0]
  stats = variables["batch_stats"]["stem"]["bn"]
  scale = variables["params"]["stem"]["bn"]
  expected = (conv_out - stats["mean"]) / np.sqrt(stats["var"] + 1e-5) * scale["scale"] + scale["bias"]
  np.testing.assert_allclose(state["intermediates"]["stem"]["bn"]["__call__"][0], expected, rtol=1e-4, atol=1e-5)


def test_batchnorm_train_without_mutable_stats_is_an_error():
  module = tiny_model(18)
  x = images()
  variables = tiny_variables(18)
  with pytest.raises(Exception, match="batch_stats"):
    module.apply(variables, x, train=True)


@pytest.mark.parametrize("on_3x3, conv1_size, conv2_size", [(True, 32, 16), (False, 16, 16)])
def test_stride_placement_v1_vs_v15(on_3x3, conv1_size, conv2_size):
  module = tiny_model(50, stride_on_3x3=on_3x3)
  x = jnp.zeros((1, 32, 32, 3))
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  _, state = jax.eval_shape(lambda v: capture(module, v, x, train=False), variables)
  block = state["intermediates"]["layer2_0"]
  assert block["conv1"]["__call__"][0].shape[1] == conv1_size
  assert block["conv2"]["__call__"][0].shape[1] == conv2_size
  assert block["downsample"]["__call__"][0].shape[1] == 16


def test_zero_init_residual_zeroes_last_bn_of_each_block():
  for depth, last in ((18, "conv2"), (50, "conv3")):
    params = tiny_variables(depth, zero_init_residual=True)["params"]
    assert not np.any(params["layer1_0"][last]["bn"]["scale"])
    assert np.all(params["layer1_0"]["conv1"]["bn"]["scale"] == 1)
    default = tiny_variables(depth)["params"]
    assert np.all(default["layer1_0"][last]["bn"]["scale"] == 1)


def test_se_block_gates_residual_branch():
  variables = tiny_variables(50, se=True)
  se = variables["params"]["layer1_0"]["se"]
  channels = variables["params"]["layer1_0"]["conv3"]["bn"]["scale"].shape[0]
  assert se["fc1"]["kernel"].shape == (channels, max(1, channels // 16))
  assert se["fc2"]["kernel"].shape == (max(1, channels // 16), channels)
  gate = resnet.SqueezeExcite(reduction=2)
  y = jnp.ones((2, 4, 4, 8))
  out, _ = gate.init_with_output(jax.random.key(0), y)
  assert np.all((out > 0) & (out < 1))  # σ(·) of a unit input: each channel scaled into (0, 1)
  np.testing.assert_allclose(out[:, 0, 0], out[:, 3, 3])  # one scale per channel, not per pixel


def test_imagenet_stem_and_bfloat16():
  """Dtypes and shapes only, so abstractly (jax.eval_shape): the same tracing, no compiling."""
  module = resnet.ResNet(num_classes=7, depth=18, width=1 / 16, dtype=jnp.bfloat16)
  x = images(2, 64)
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(variables["params"]))
  logits = jax.eval_shape(lambda v: module.apply(v, x, train=False), variables)
  assert logits.dtype == jnp.float32 and logits.shape == (2, 7)
  _, state = jax.eval_shape(lambda v: capture(module, v, x, train=False), variables)
  assert state["intermediates"]["layer1_0"]["__call__"][0].shape[1:3] == (16, 16)  # 64 / 4
  assert state["intermediates"]["layer1_0"]["__call__"][0].dtype == jnp.bfloat16


@pytest.mark.parametrize("kw, match", [
    (dict(depth=20), "depth 20"),
    (dict(depth=18, stem="cifar"), "stem"),
    (dict(depth=18, groups=32, width_per_group=4), "depth >= 50"),
    (dict(depth=50, groups=32, width_per_group=4, width=1 / 16), "smaller than groups"),
])
def test_bad_model_settings_raise_clear_errors(kw, match):
  module = resnet.ResNet(**kw)
  with pytest.raises(ValueError, match=match):  # raised while tracing: abstractly, nothing is computed
    jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))


def test_wrong_input_layout_is_rejected():
  with pytest.raises(ValueError, match="NHWC"):
    tiny_model(18).init(jax.random.key(0), jnp.zeros((1, 3, 32, 32)), train=False)


def test_configs_build_through_registry():
  cases = [
      (resnet_config.get_config("depth=50,v1"), dict(depth=50, groups=1, stride_on_3x3=False)),
      (resnext_config.get_config(), dict(depth=50, groups=32, width_per_group=4)),
      (senet_config.get_config(), dict(depth=50, se=True, se_reduction=16)),
  ]
  for config, fields in cases:
    for key, value in fields.items():
      assert config.model[key] == value, (config.name, key)
    module = build_model(config.model, num_classes=1000)
    assert isinstance(module, resnet.ResNet)
  default = resnet_config.get_config()
  assert default.optimizer.weight_decay == 1e-4 and default.schedule.base_lr == 0.1
  assert default.batch_size == 256 and default.input.std_rgb != (1.0, 1.0, 1.0)
  assert param_count(build_model(resnext_config.get_config().model, 1000)) == 25_028_904


def test_config_quick_mode_and_batch_scaling():
  smoke = resnet_config.get_config("smoke,depth=18")
  assert smoke.dataset == "embedded" and smoke.input.image_size == 64
  assert smoke.model.stem == "small" and smoke.model.width < 1
  assert resnext_config.get_config("smoke").model.groups <= 4
  assert resnet_config.get_config("batch=512").schedule.base_lr == pytest.approx(0.2)
  assert resnet_config.get_config("lr=0.05,batch=128").schedule.base_lr == pytest.approx(0.025)


@pytest.mark.parametrize("arg, match", [
    ("depth=20", "depth=20"), ("stem=big", "stem"),
    ("sched=exp", "sched"), ("widht=2", "Unknown config argument"),
])
def test_config_rejects_bad_arguments(arg, match):
  with pytest.raises(ValueError, match=match):
    resnet_config.get_config(arg)


def test_grouped_bottlenecks_need_depth_50():
  from alexnet_jax.configs import validate
  with pytest.raises(ValueError, match="depth >= 50"):
    validate.check(resnet_config.get_config("depth=18,groups=32"), check_data=False)


SHARDED_BN_SCRIPT = textwrap.dedent("""
    import json
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from alexnet_jax.models.resnet import ResNet

    assert jax.device_count() == 8, jax.devices()
    module = ResNet(num_classes=5, depth=18, width=1 / 16, stem="small")
    # Each device's 2 images get a different offset, so per-shard statistics would be far
    # from the global ones: equality below is only possible with a global reduction.
    offsets = jnp.repeat(jnp.arange(8.0), 2)[:, None, None, None]
    x = jax.random.normal(jax.random.key(1), (16, 16, 16, 3)) + offsets
    # Jitted: eager initialisation compiles every operation on its own (about 3 s more CPU).
    variables = jax.jit(lambda k: module.init(k, x, train=False))(jax.random.key(0))
    forward = jax.jit(lambda v, x: module.apply(v, x, train=True, mutable=["batch_stats"]))
    logits, updates = forward(variables, x)
    mesh = jax.make_mesh((8,), ("data",))
    x_sharded = jax.device_put(x, NamedSharding(mesh, P("data")))
    v_replicated = jax.device_put(variables, NamedSharding(mesh, P()))
    logits_s, updates_s = forward(v_replicated, x_sharded)
    stats_diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
        jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(updates_s)))
    # The stem BN's running mean if device 0 had used only its own shard (0.1 · shard mean).
    stem = variables["params"]["stem"]["conv"]["kernel"]
    conv0 = jax.lax.conv_general_dilated(x[:2], stem, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    local_mean = 0.1 * jnp.mean(conv0, axis=(0, 1, 2))
    local_diff = float(jnp.max(jnp.abs(local_mean - updates_s["batch_stats"]["stem"]["bn"]["mean"])))
    print(json.dumps(dict(
        shards=len(x_sharded.addressable_shards), stats_diff=stats_diff, local_diff=local_diff,
        logits_diff=float(jnp.max(jnp.abs(logits - logits_s))))))
""")


def test_batchnorm_statistics_are_global_under_sharded_jit():
  """8 simulated CPU devices, batch sharded: BN statistics equal the unsharded ones."""
  flags = "--xla_force_host_platform_device_count=8 " + " ".join(
      f"--{key}={str(value).lower()}" for key, value in FAST_COMPILE.items())
  env = subprocess_env(XLA_FLAGS=flags)
  proc = subprocess.run([sys.executable, "-c", SHARDED_BN_SCRIPT], env=env, cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result["shards"] == 8
  assert result["stats_diff"] < 1e-5
  assert result["logits_diff"] < 1e-4
  assert result["local_diff"] > 1e-3  # the test can tell global from per-shard statistics


def test_resnet_d_matches_the_published_parameter_count():
  """ResNet-50-D (deep stem 32-32-64, average-pool shortcuts): timm's resnet50d has 25,576,264."""
  module = resnet.ResNet(num_classes=1000, depth=50, stem="deep", avg_down=True)
  assert param_count(module) == 25_576_264
  # The average-pool shortcut adds no parameters; the deep stem replaces the 7×7 conv.
  assert param_count(resnet.ResNet(num_classes=1000, depth=50, stem="deep")) == 25_576_264


@pytest.mark.parametrize("size", [16, 17])
def test_resnet_d_shortcut_pools_before_a_stride_1_projection(size):
  """The downsampling shortcut of ResNet-D is a 2×2/2 average (ceil mode, padding not counted), then a
  1×1 conv at stride 1: on a constant input it is the same as the conv alone; on odd sizes it keeps
  ceil(n/2) positions like the strided 3×3 branch."""
  block = resnet.ResidualBlock(8, kind="basic", stride=2, avg_down=True)
  x = jnp.ones((1, size, size, 4))
  variables = block.init(jax.random.key(0), x, train=False)
  y = block.apply(variables, x, train=False)
  assert y.shape == (1, -(-size // 2), -(-size // 2), 8)
  kernel = next(x for x in jax.tree_util.tree_leaves(variables["params"]["downsample"]) if x.ndim == 4)
  assert kernel.shape == (1, 1, 4, 8)
  # Without avg_down the projection samples one position in four; with it every position counts.
  x = jax.random.normal(jax.random.key(1), (1, size, size, 4))
  plain = resnet.ResidualBlock(8, kind="basic", stride=2)
  y_plain = plain.apply(variables, x, train=False)
  y_d = block.apply(variables, x, train=False)
  assert not np.allclose(np.asarray(y_plain), np.asarray(y_d))


def test_deep_stem_is_three_3x3_convs_then_a_pool():
  """Shapes only, so abstractly (jax.eval_shape)."""
  module = resnet.ResNet(num_classes=5, depth=18, width=1 / 16, stem="deep", avg_down=True)
  x = jnp.zeros((2, 32, 32, 3))
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  stem = {k: v for k, v in variables["params"].items() if k.startswith("stem")}
  assert sorted(stem) == ["stem1", "stem2", "stem3"]
  shapes = [next(x.shape for x in jax.tree_util.tree_leaves(stem[name]) if x.ndim == 4)
            for name in ("stem1", "stem2", "stem3")]
  assert [s[:2] for s in shapes] == [(3, 3)] * 3 and shapes[0][2] == 3
  assert jax.eval_shape(lambda v: module.apply(v, x, train=False), variables).shape == (2, 5)
