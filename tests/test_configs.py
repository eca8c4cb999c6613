"""Config families: the one override order, every argument landing, and the recipes' paper details."""

from __future__ import annotations

import importlib

import pytest

from alexnet_jax import models
from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.configs import common
from alexnet_jax.configs import validate

FAMILIES = ("alexnet", "zfnet", "vgg", "googlenet", "resnet", "resnext", "senet", "squeezenet", "cifar_cnn")


def _family(name: str):
  return importlib.import_module(f"alexnet_jax.configs.{name}")


def _family_args(name: str) -> dict[str, common.Arg]:
  module = _family(name)
  if hasattr(module, "FAMILY_ARGS"):
    return module.FAMILY_ARGS
  return importlib.import_module("alexnet_jax.configs.resnet").FAMILY_ARGS  # resnext, senet


def _other_value(name: str, key: str, a: common.Arg, smoke: bool):
  """A valid value of argument `key` that differs from its default (and from quick mode's)."""
  if a.choices:
    default = a.default
    if name in ("resnext", "senet") and key == "depth":
      return 101
    if key == "depth" and name == "resnet":
      return 34
    return next(c for c in reversed(a.choices) if c != default)
  if a.type is bool:
    return not a.default if a.default is not None else False
  if name == "resnext" and key in ("groups", "width_per_group"):
    return 8
  special = {"data": "cifar10", "epochs": 3.0, "batch": 32, "res": 160, "seed": 7, "dropout": 0.25, "pca": 0.05,
             "lr": 0.0375, "width": 0.75, "groups": 1, "width_per_group": 64, "se_reduction": 8}
  return special[key]


def _cases():
  for name in FAMILIES:
    spec = {**common.ARGS, **_family_args(name)}
    for key, a in spec.items():
      if key != "smoke":
        for smoke in (False, True):
          yield name, key, smoke


@pytest.mark.parametrize("name,key,smoke", list(_cases()))
def test_every_argument_lands_with_and_without_quick_mode(name, key, smoke):
  """Defaults → recipe → quick mode → explicit arguments: an explicit argument always lands."""
  spec = {**common.ARGS, **_family_args(name)}
  a = spec[key]
  value = _other_value(name, key, a, smoke)
  arg = f"{key}={value}" + (",smoke" if smoke else "")
  c = _family(name).get_config(arg)
  args, _ = common.parse_args(arg, spec)
  if a.field:
    expected = a.to(value, args) if a.to else value
    assert common.get_field(c, a.field) == expected, (arg, a.field)
  elif key == "norm":
    assert (c.input.mean_rgb, c.input.std_rgb) == common.NORMS[value]
  elif key == "aug":
    assert all(c.input[k] == v for k, v in common.AUGMENTATIONS[value].items())
  elif key == "variant":  # googlenet: the variant's fields
    assert c.model.bn == (value == "torchvision")
  elif key == "inputs":  # alexnet: the input scale and LRN's α with it
    unit = value == "unit"
    assert c.input.std_rgb == (common.IMAGENET_STD_RGB if unit else (1.0, 1.0, 1.0))
    assert c.model.lrn_alpha == pytest.approx(1e-4 * (common.PIXEL_SCALE ** 2 if unit else 1.0))
  elif key == "d":  # ResNet-D: deep stem and average-pool shortcuts (only switched on)
    assert (c.model.stem, c.model.avg_down) == (("deep", True) if value else (c.model.stem, c.model.avg_down))
  elif key == "tricks":  # the Bag-of-Tricks training refinements (only switched on)
    if value:
      assert (c.schedule.name, c.label_smoothing, c.model.zero_init_residual,
              c.optimizer.decay_biases_and_norms) == ("cosine", 0.1, True, False)
  elif key == "one_gpu":  # alexnet: the paper's one-GPU net (one tower, half the kernels in conv1-4)
    assert (c.model.towers, c.model.half_kernels) == (1, True)
  elif key == "small":  # alexnet: the small-data recipe (warm-up and the plateau rule counted in steps)
    assert (c.schedule.warmup_steps, c.schedule.patience_steps, c.schedule.first_cut_step) == (
        alexnet_config.SMALL_WARMUP_STEPS, alexnet_config.SMALL_PATIENCE_STEPS, alexnet_config.SMALL_FIRST_CUT_STEP)
  else:
    raise AssertionError(f"argument {key} of {name} has no check")
  if key != "data":
    assert validate.problems(c, check_data=False, geometry=False) == [], arg


@pytest.mark.parametrize("name", FAMILIES)
def test_recipes_and_quick_modes_are_valid(name):
  for arg in (None, "smoke"):
    assert validate.problems(_family(name).get_config(arg), check_data=False) == [], (name, arg)


def test_explicit_arguments_beat_quick_mode():
  """The defect: `smoke,lr=0.05,sched=step` trained cosine at 0.02 in five families."""
  for name in ("alexnet", "zfnet", "vgg", "googlenet", "resnet", "squeezenet"):
    c = _family(name).get_config("smoke,lr=0.05,sched=step")
    assert (c.schedule.name, c.schedule.base_lr) == ("step", 0.05), name
  assert _family("zfnet").get_config("smoke,init=paper").model.init_scheme == "paper"
  assert _family("vgg").get_config("smoke,bn=False").model.bn is False


def test_quick_mode_width_multiplies_the_argument():
  assert _family("alexnet").get_config("smoke,width=0.5").model.width == 0.25
  assert _family("alexnet").get_config("width=0.5").model.width == 0.5


def test_resnet_batch_scales_the_rate_linearly():
  assert _family("resnet").get_config("batch=512").schedule.base_lr == pytest.approx(0.2)
  assert _family("resnet").get_config("batch=512,lr=0.05").schedule.base_lr == pytest.approx(0.1)


@pytest.mark.parametrize("name", FAMILIES)
def test_config_model_is_the_module(name):
  """config.model holds exactly the module's fields (no renaming layer)."""
  for arg in (None, "smoke"):
    m = _family(name).get_config(arg).model
    assert set(m) - {"name"} <= set(models.config_fields(m.name))
    module = models.build_model(m, 10)
    for key, value in m.items():
      if key != "name":
        assert getattr(module, key) == value


def test_owt_variant_lives_in_the_config():
  c = _family("alexnet").get_config("variant=owt")
  assert (c.model.towers, c.model.lrn) == (1, False)
  assert _family("alexnet").get_config("variant=owt,lrn=True").model.lrn is True


def test_paper_crop_region_is_the_default_where_the_paper_states_it():
  for name in ("alexnet", "zfnet", "vgg"):
    assert _family(name).get_config().input.crop_region == "center_square", name
  for name in ("googlenet", "resnet", "squeezenet"):
    assert _family(name).get_config().input.crop_region == "full", name


def test_vgg_test_scales_follow_training():
  assert tuple(_family("vgg").get_config().eval.scales) == (224, 256, 288)  # fixed S = 256
  assert tuple(_family("vgg").get_config("aug=inception").eval.scales) == (256, 384, 512)  # jittered
  assert tuple(_family("vgg").get_config("res=192").eval.scales) == (224, 256, 288)  # S in 224-crop units


def test_googlenet_paper_variant():
  c = _family("googlenet").get_config("variant=paper")
  assert c.batch_size == 32
  assert (c.model.aux_pool, c.model.pool4_window) == ("avg5s3", 3)
  t = _family("googlenet").get_config()
  assert (t.batch_size, t.model.aux_pool, t.model.pool4_window) == (128, "adaptive", 2)


def test_torchvision_normalisation_uses_torchvision_statistics():
  mean, std = common.NORMS["torchvision"]
  assert mean == pytest.approx((0.485 * 255, 0.456 * 255, 0.406 * 255))
  assert std == pytest.approx((0.229 * 255, 0.224 * 255, 0.225 * 255))
  c = _family("alexnet").get_config("norm=torchvision")
  assert tuple(c.input.std_rgb) == pytest.approx(std)


def test_quick_mode_lrn_term_has_the_pixel_scale_size():
  """Quick mode divides inputs by ~57.6, so α grows by its square (LRN is not a fixed gain)."""
  for name in ("alexnet", "zfnet"):
    full, quick = _family(name).get_config(), _family(name).get_config("smoke")
    assert quick.model.lrn_alpha == pytest.approx(full.model.lrn_alpha * common.PIXEL_SCALE ** 2)


def test_geometry_names_the_smallest_input():
  """The README's `data=cifar10,res=32` made 0×0 maps in AlexNet and trained at chance."""
  c = _family("alexnet").get_config("data=cifar10,res=32")
  found = validate.problems(c, check_data=False)
  assert len(found) == 1 and "at least 67 px" in found[0] and "image_size=32" in found[0]
  assert validate.fits(c.model, 67) and not validate.fits(c.model, 66)


def test_every_base_config_field_has_a_rule():
  """A new base_config field needs a validation rule (and a bad-input case)."""
  flat = [path for path in _leaves(common.base_config()) if not path.startswith("model.")]
  missing = sorted(set(flat) - set(validate.RULES) - {"dataset"})
  assert not missing, missing


def _leaves(c, prefix=""):
  for key, value in c.items():
    if hasattr(value, "items"):
      yield from _leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}"


def test_tfds_dataset_without_validation_split_evaluates_on_test():
  """cifar10 has train/test only: `eval_split='validation'` falls back to `test` (with a log line)."""
  from types import SimpleNamespace as NS

  import ml_collections

  from alexnet_jax.data import input_pipeline
  label = NS(num_classes=10, names=[str(i) for i in range(10)])
  builder = NS(name="cifar10", info=NS(features={"image": None, "label": label},
                                       splits={"train": NS(num_examples=50), "test": NS(num_examples=10)}))
  config = ml_collections.ConfigDict(dict(dataset="cifar10", train_split="train", eval_split="validation"))
  source = input_pipeline._TfdsSource(builder, config)
  assert source.info.num_eval == 10
  assert source._shard("validation", 0, 1) == "test"


@pytest.mark.parametrize("name", FAMILIES)
def test_lr_is_the_rate_at_the_recipes_batch_in_every_family_and_mode(name):
  """`lr=` means one thing: the rate at the batch the recipe (or quick mode) trains with, scaled
  linearly when `batch=` sets another batch, whichever order the arguments come in."""
  for mode in ("", "smoke,"):
    recipe_batch = _family(name).get_config(mode.rstrip(",") or None).batch_size
    assert _family(name).get_config(f"{mode}lr=0.02").schedule.base_lr == pytest.approx(0.02)
    for arg in (f"{mode}lr=0.02,batch={2 * recipe_batch}", f"{mode}batch={2 * recipe_batch},lr=0.02"):
      assert _family(name).get_config(arg).schedule.base_lr == pytest.approx(0.04), arg
