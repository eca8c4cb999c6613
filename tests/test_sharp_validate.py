"""Config validation, where a small change would still pass the broader tests: every rule at its
boundaries and in its words, the checks across fields, the model's fields by their type, and the
geometry search for the smallest input.

Rules are called directly and configs are checked without the dataset lookup unless a test is
about it; the few model traces use `jax.eval_shape` on small models (no compilation).
"""

from __future__ import annotations

import math
import os

import ml_collections
import pytest

from alexnet_jax import models
from alexnet_jax.configs import alexnet
from alexnet_jax.configs import validate
from alexnet_jax.errors import ConfigError


# ----------------------------------------------------------------------------- single-value rules

def test_integer_rules_at_their_boundaries():
  assert [validate.positive_int(v) for v in (1, 7)] == [None, None]
  assert {validate.positive_int(v) for v in (0, -1, 1.0, True, "1", None)} == {"a positive integer"}
  assert [validate.nonneg_int(v) for v in (0, 3)] == [None, None]
  assert {validate.nonneg_int(v) for v in (-1, 0.0, False, "0")} == {"an integer >= 0"}
  assert [validate.count_or_unset(v) for v in (-1, 1, 5)] == [None, None, None]
  assert {validate.count_or_unset(v) for v in (0, -2, 1.0, True)} == {"a positive integer, or -1 (not set)"}


def test_number_rules_at_their_boundaries():
  assert [validate.positive(v) for v in (1e-12, 1, 2.5)] == [None, None, None]
  assert {validate.positive(v) for v in (0, 0.0, -1e-12, math.inf, math.nan, True, "1")} == {"a number > 0"}
  assert [validate.nonneg(v) for v in (0, 0.0, 3)] == [None, None, None]
  assert {validate.nonneg(v) for v in (-1e-12, math.inf, -math.inf, False, None)} == {"a number >= 0"}
  assert [validate.rate(v) for v in (0, 0.0, 0.5, 0.999999)] == [None] * 4
  assert {validate.rate(v) for v in (1, 1.0, -0.1, math.nan, True)} == {"a number in [0, 1)"}


def test_text_bool_and_choice_rules():
  assert (validate.boolean(True), validate.boolean(False)) == (None, None)
  assert {validate.boolean(v) for v in (1, 0, "True", None)} == {"True or False"}
  assert (validate.text(""), validate.text("x")) == (None, None)
  assert {validate.text(v) for v in (None, 1, b"x")} == {"a string"}
  assert validate.nonempty(" a ") is None
  assert {validate.nonempty(v) for v in ("", "  \t", None, 3)} == {"a non-empty string"}
  rule = validate.one_of("sgd", 2, None)
  assert [rule(v) for v in ("sgd", 2, None)] == [None, None, None]
  assert rule("SGD") == rule(3) == "one of sgd, 2, None"


def test_in_interval_open_and_closed_low_ends():
  closed, half_open = validate.in_interval(0.25, 1.0), validate.in_interval(0.0, 1.0, low_open=True)
  assert [closed(v) for v in (0.25, 0.5, 1.0, 1)] == [None] * 4
  assert {closed(v) for v in (0.24, 1.01, math.nan, True)} == {"a number in [0.25, 1]"}
  assert [half_open(v) for v in (1e-9, 1.0)] == [None, None]
  assert {half_open(v) for v in (0.0, 0, -1.0, 1.5)} == {"a number in (0, 1]"}


def test_seq_checks_type_length_emptiness_and_each_value():
  three = validate.seq(validate.nonneg, 3)
  assert three((0, 1, 2.5)) is None and three([0.0, 0.0, 0.0]) is None
  for bad in ((0, 1), (0, 1, 2, 3), (0, -1, 2), "abc", None, {0: 1, 1: 1, 2: 1}):
    assert three(bad) == "a sequence of 3 values, each a number >= 0", bad
  any_length = validate.seq(validate.positive_int)
  assert any_length((5,)) is None and any_length([1, 2, 3, 4]) is None
  assert any_length(()) == any_length((1, 0)) == "a sequence of values, each a positive integer"
  may_be_empty = validate.seq(validate.positive, nonempty_=False)
  assert may_be_empty(()) is None and may_be_empty([]) is None and may_be_empty((2.0,)) is None
  assert may_be_empty((0.0,)) == "a sequence of values, each a number > 0"
  accepts_anything = validate.seq(lambda v: None, 2)
  assert accepts_anything((1, 2)) is None and accepts_anything((1,)) == "a sequence of 2 values, each ?"
  # the element rule's words come from a value no rule accepts
  assert validate.seq(validate.one_of(None, 1))(("x",)) == "a sequence of values, each one of None, 1"


def test_subset_and_matrix3():
  rule = validate.subset("center", "10crop")
  assert rule(("center",)) is None and rule(["10crop", "center"]) is None
  for bad in ((), [], ("center", "5crop"), "center", None):
    assert rule(bad) == "a non-empty list of center, 10crop", bad
  eye = ((1, 0, 0), (0, 1.5, 0), [0, 0, -1])
  assert validate.matrix3(eye) is None and validate.matrix3([list(r) for r in eye]) is None
  for bad in (eye[:2], (*eye, eye[0]), ((1, 0), (0, 1, 0), (0, 0, 1)), ((1, 0, 0, 0), (0, 1, 0), (0, 0, 1)),
              ((1, 0, 0), (0, math.inf, 0), (0, 0, 1)), ((True, 0, 0), (0, 1, 0), (0, 0, 1)),
              ((1, 0, 0), (0, 1, 0), "abc"), "abc", None):
    assert validate.matrix3(bad) == "a 3×3 matrix (three rows of three numbers)", bad


# ----------------------------------------------------------------------------- the model's fields

def _model(**fields) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(fields)


def test_model_name_and_unknown_fields():
  assert validate._model_problems(_model(name="lenet")) == [
      f"config.model.name='lenet': choose one of {', '.join(models.names())}"]
  assert validate._model_problems(_model(name=None))[0].startswith("config.model.name=None: choose one of alexnet")
  fields = ", ".join(sorted(models.config_fields("vgg")))
  assert validate._model_problems(_model(name="vgg", a_typo=1, width=0.0)) == [
      f"config.model.a_typo: model 'vgg' has no such field; it takes {fields}",
      "config.model.width=0.0: must be a number > 0"]


def test_model_fields_are_checked_by_their_default_type():
  got = validate._model_problems(_model(
      name="alexnet", act="swish", conv1_padding=-1, dropout=1.0, fc_dim=1.5, half_kernels=1, lrn_alpha=0.0,
      lrn_k=-0.5, pool_window=0, towers=3, width=-1.0))
  assert got == [
      "config.model.act='swish': choose one of relu, tanh, gelu, sigmoid",
      "config.model.conv1_padding=-1: must be an integer >= 0",
      "config.model.dropout=1.0: must be a number in [0, 1)",
      "config.model.fc_dim=1.5: must be a positive integer",
      "config.model.half_kernels=1: True or False",
      "config.model.lrn_alpha=0.0: must be a number > 0",
      "config.model.lrn_k=-0.5: must be a number >= 0",
      "config.model.pool_window=0: must be a positive integer",
      "config.model.towers=3: choose one of 1, 2",
      "config.model.width=-1.0: must be a number > 0"]
  assert validate._model_problems(_model(
      name="alexnet", act="tanh", conv1_padding=0, dropout=0.0, fc_dim=8, half_kernels=True, lrn_alpha=1e-4,
      lrn_beta=0.0, lrn_k=0.0, pool_window=2, towers=1, width=0.1)) == []
  assert validate._model_problems(_model(name="googlenet", aux_dropout=0.0, dropout=0.99)) == []
  assert validate._model_problems(_model(name="googlenet", aux_dropout=-0.1)) == [
      "config.model.aux_dropout=-0.1: must be a number in [0, 1)"]
  assert validate._model_problems(_model(name="cifar_cnn", channels=(8, 0))) == [
      "config.model.channels=(8, 0): must be a sequence of values, each a positive integer"]
  assert validate._model_problems(_model(name="cifar_cnn", channels=[8, 16], kernel=3)) == []
  assert validate._model_problems(_model(name="vgg", depth=12)) == ["config.model.depth=12: choose one of 11, 13, 16, 19"]


def test_grouped_bottlenecks_need_a_deep_resnet():
  def problems(**fields):
    return validate._model_problems(_model(name="resnet", **{"depth": 18, "groups": 1, "width_per_group": 64,
                                                            **fields}))
  assert problems() == [] and problems(depth=50, groups=32, width_per_group=4) == []
  need = "bottlenecks need depth >= 50, got depth="
  assert problems(depth=34, groups=2) == [
      f"config.model.groups=2, width_per_group=64: grouped (ResNeXt) {need}34"]
  assert problems(width_per_group=128) == [
      f"config.model.groups=1, width_per_group=128: grouped (ResNeXt) {need}18"]
  assert problems(groups=2, se_reduction=0) == ["config.model.se_reduction=0: must be a positive integer"]


# ----------------------------------------------------------------------------- checks across fields

def _config(**fields) -> ml_collections.ConfigDict:
  c = alexnet.get_config("smoke")
  c.unlock()
  for path, value in fields.items():
    *parents, last = path.split("__")
    node = c
    for part in parents:
      node = node[part]
    node[last] = value
  return c


def test_augmentation_checks_across_fields():
  assert validate._augment_problems(_config().input) == []
  assert validate._augment_problems(_config(input__resize_size=64, input__image_size=64,
                                            input__inception_aspect_range=(1.0, 1.0)).input) == []
  assert validate._augment_problems(_config(input__resize_size=63, input__image_size=64,
                                            input__inception_aspect_range=(1.5, 1.25)).input) == [
      "config.input.resize_size=63: must be >= config.input.image_size=64",
      "config.input.inception_aspect_range=(1.5, 1.25): must be (low, high) with low <= high"]
  store_full = "config.input.crop_region='full': random crops anywhere in the image need the whole image, and " \
               "config.input.pipeline='store' keeps only its central square; set " \
               "config.input.crop_region=center_square or config.input.pipeline=stream"
  assert validate._augment_problems(_config(input__crop_region="full").input) == [store_full]
  for other in ({"input__pipeline": "stream"}, {"input__train_crop": "inception"}, {"input__train_crop": "center"}):
    assert validate._augment_problems(_config(input__crop_region="full", **other).input) == [], other


def test_problems_names_the_field_value_and_rule_and_skips_later_checks():
  assert validate.problems(_config(), check_data=False, geometry=False) == []
  assert validate.problems(_config(batch_size=0, dtype="float16"), check_data=False, geometry=False) == [
      "config.batch_size=0: must be a positive integer",
      "config.dtype='float16': must be one of float32, bfloat16"]
  # a field's problem hides the checks across fields (they assume valid fields)
  assert validate.problems(_config(batch_size=0, input__resize_size=8), check_data=False, geometry=False) == [
      "config.batch_size=0: must be a positive integer"]
  assert validate.problems(_config(input__resize_size=8), check_data=False, geometry=False) == [
      "config.input.resize_size=8: must be >= config.input.image_size=64"]
  # the model's problems come with the others
  assert validate.problems(_config(batch_size=0, model__towers=5), check_data=False, geometry=False) == [
      "config.batch_size=0: must be a positive integer", "config.model.towers=5: choose one of 1, 2"]


def test_a_missing_field_is_named():
  c = _config()
  del c.input["flip"]
  del c["seed"]
  assert validate.problems(c, check_data=False, geometry=False) == [
      "config.seed is missing; the config must come from common.base_config()",
      "config.input.flip is missing; the config must come from common.base_config()"]


def test_check_raises_every_problem_at_once():
  validate.check(_config(), check_data=False, geometry=False)
  with pytest.raises(ConfigError) as e:
    validate.check(_config(batch_size=0, num_epochs=-1.0), check_data=False, geometry=False)
  assert str(e.value) == ("config.batch_size=0: must be a positive integer\n"
                          "config.num_epochs=-1.0: must be a number > 0")


def test_check_looks_up_the_data_and_traces_the_model_unless_told_not_to(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  bad_data, too_small = _config(dataset="./missing"), _config(input__image_size=32, input__resize_size=36)
  for c in (bad_data, too_small):
    validate.check(c, check_data=False, geometry=False)
  for kwargs in ({}, {"check_data": True, "geometry": False}):
    with pytest.raises(ConfigError, match=r"^config\.dataset='\./missing': no such folder"):
      validate.check(bad_data, **kwargs)
  for kwargs in ({"check_data": False}, {"check_data": False, "geometry": True}):
    with pytest.raises(ConfigError, match=r"^config\.input\.image_size=32: .* at least 33 px"):
      validate.check(too_small, **kwargs)


# ----------------------------------------------------------------------------- dataset

def test_dataset_as_embedded_folder_or_tfds_name(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "images" / "train").mkdir(parents=True)
  ok = ("embedded", "images", str(tmp_path / "images"), "cifar10", "cifar10:3.0.2", "imagenet2012/subset")
  assert [validate._dataset_problem(d) for d in ok] == [None] * len(ok)
  for blank in ("", " \t"):
    assert validate._dataset_problem(blank) == (
        f"config.dataset={blank!r}: set 'embedded', a TFDS name or an image-folder path")
  assert validate._dataset_problem(None) == "config.dataset=None: set 'embedded', a TFDS name or an image-folder path"
  assert validate._dataset_problem(3) == "config.dataset=3: set 'embedded', a TFDS name or an image-folder path"
  layout = "no such folder (an image folder is laid out as <root>/<split>/<class>/<image>)"
  for path in ("/no/such/folder", "./missing", "~/missing", "images/missing", ".hidden"):
    assert validate._dataset_problem(path) == f"config.dataset={path!r}: {layout}", path
  assert validate._dataset_problem("notadataset/x:1.0") == (
      "config.dataset='notadataset/x:1.0': tried it as a folder (no such folder) and as a TFDS dataset name "
      "('notadataset' is not one); use 'embedded', a TFDS name such as 'imagenet2012' or 'cifar10', or an "
      "image-folder path")
  assert validate.problems(_config(dataset="./missing"), geometry=False) == [f"config.dataset='./missing': {layout}"]
  assert validate.problems(_config(dataset="./missing"), check_data=False, geometry=False) == []
  assert os.listdir(tmp_path) == ["images"]


# ----------------------------------------------------------------------------- geometry

def test_smallest_input_is_found_by_bisection():
  small = _model(name="cifar_cnn", channels=(4, 4, 8))
  assert validate.fits(small, 8) and not validate.fits(small, 7)
  assert validate.smallest_input(small) == 8
  assert validate.smallest_input(small, upto=8) == 8 and validate.smallest_input(small, upto=7) is None
  assert validate.smallest_input(_config().model, upto=64) == 33


def test_geometry_problems_name_the_smallest_input_or_the_empty_layer():
  assert validate.problems(_config(), check_data=False) == []
  assert validate.problems(_config(input__image_size=32, input__resize_size=36), check_data=False) == [
      "config.input.image_size=32: model 'alexnet' with these settings makes empty feature maps; it accepts "
      "inputs of at least 33 px (set res= or change the model)"]
  assert validate.problems(_config(input__image_size=32, input__resize_size=36), check_data=False,
                           geometry=False) == []
  assert validate.problems(_config(input__image_size=32, batch_size=0), check_data=False) == [
      "config.batch_size=0: must be a positive integer"]  # no trace while a field is wrong
  assert validate.problems(_config(model__width=0.001), check_data=False) == [
      "config.model: model 'alexnet' with these settings has a layer with no channels at any input size (a "
      "width, group or channel setting is too small)"]


def test_smallest_input_bisects_from_1_up_to_1024(monkeypatch):
  def smallest(first: int, **kwargs):
    monkeypatch.setattr(validate, "fits", lambda model_cfg, size: size >= first)
    return validate.smallest_input(_model(name="alexnet"), **kwargs)
  assert [smallest(n) for n in (1, 2, 33, 1023, 1024)] == [1, 2, 33, 1023, 1024]
  assert smallest(1025) is None and smallest(1025, upto=1025) == 1025


def test_fits_checks_every_feature_map_not_only_the_parameters_and_logits():
  # VGG's adaptive pool makes 7×7 maps from empty ones and its parameters do not depend on the input size:
  # only the feature maps in between show that an 8 px input leaves nothing after the fifth pool
  vgg = _model(name="vgg", depth=11, width=0.125, fc_dim=8)
  assert validate.fits(vgg, 16) and not validate.fits(vgg, 8)


def test_fits_traces_an_rgb_image():
  assert validate.fits(_model(name="resnet", depth=18, width=0.125), 8)  # ResNet refuses other channel counts
