"""One validation pass over a finished config: every field a user can set, and the model's geometry.

`check(config)` runs after the config string and every `--config.<field>` override are
applied and before anything is read, compiled or written. It collects one line per
problem, each naming the field, the value and what would be accepted, and raises them
together as one `ConfigError`. Every field of `common.base_config()` has a rule in
`RULES` (a test keeps it so); `config.model` is checked against the fields of the module
it builds, then by tracing the model on the configured input size (`jax.eval_shape`, no
compilation), which names the smallest resolution the model accepts.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

import ml_collections

from alexnet_jax import model_choices
from alexnet_jax.configs import common
from alexnet_jax.errors import ConfigError
from alexnet_jax.eval import sets as eval_sets
from alexnet_jax.eval import views

Rule = Callable[[Any], "str | None"]  # the value's problem ("must be ..."), or None


def _is_int(v: Any) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def positive_int(v: Any) -> str | None:
  return None if _is_int(v) and v > 0 else "a positive integer"


def nonneg_int(v: Any) -> str | None:
  return None if _is_int(v) and v >= 0 else "an integer >= 0"


def positive(v: Any) -> str | None:
  return None if _is_num(v) and v > 0 else "a number > 0"


def nonneg(v: Any) -> str | None:
  return None if _is_num(v) and v >= 0 else "a number >= 0"


def rate(v: Any) -> str | None:
  return None if _is_num(v) and 0 <= v < 1 else "a number in [0, 1)"


def boolean(v: Any) -> str | None:
  return None if isinstance(v, bool) else "True or False"


def text(v: Any) -> str | None:
  return None if isinstance(v, str) else "a string"


def nonempty(v: Any) -> str | None:
  return None if isinstance(v, str) and v.strip() else "a non-empty string"


def one_of(*choices: Any) -> Rule:
  return lambda v: None if v in choices else f"one of {', '.join(map(str, choices))}"


def count_or_unset(v: Any) -> str | None:
  return None if _is_int(v) and (v > 0 or v == -1) else "a positive integer, or -1 (not set)"


def in_interval(low: float, high: float, low_open: bool = False) -> Rule:
  def rule(v: Any) -> str | None:
    ok = _is_num(v) and (v > low if low_open else v >= low) and v <= high
    return None if ok else f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"
  return rule


def seq(rule: Rule, length: int | None = None, nonempty_: bool = True) -> Rule:
  def check(v: Any) -> str | None:
    if not isinstance(v, (tuple, list)) or (length is not None and len(v) != length) or (nonempty_ and not v) \
        or any(rule(x) for x in v):
      n = f"{length} " if length else ""
      return f"a sequence of {n}values, each {rule(object()) or '?'}"
    return None
  return check


def subset(*choices: str) -> Rule:
  def check(v: Any) -> str | None:
    if isinstance(v, (tuple, list)) and v and all(x in choices for x in v):
      return None
    return f"a non-empty list of {', '.join(choices)}"
  return check


def matrix3(v: Any) -> str | None:
  ok = isinstance(v, (tuple, list)) and len(v) == 3 and all(
      isinstance(r, (tuple, list)) and len(r) == 3 and all(_is_num(x) for x in r) for r in v)
  return None if ok else "a 3×3 matrix (three rows of three numbers)"


# Every field of `common.base_config()` except `model` (checked against the module) and `dataset`.
RULES: dict[str, Rule] = {
    "name": nonempty,
    "seed": nonneg_int,
    "data_dir": text,
    "train_split": nonempty,
    "eval_split": nonempty,
    "embedded_train_size": positive_int,
    "embedded_eval_size": positive_int,
    "input.image_size": positive_int,
    "input.resize_size": positive_int,
    "input.train_crop": one_of("random", "inception", "center"),
    "input.crop_region": one_of("full", "center_square"),
    "input.inception_min_area": in_interval(0.0, 1.0, low_open=True),
    "input.flip": boolean,
    "input.pca_lighting": nonneg,
    "input.pca_eigval": seq(nonneg, 3),
    "input.pca_eigvec": matrix3,
    "input.mean_rgb": seq(lambda x: None if _is_num(x) else "a number", 3),
    "input.std_rgb": seq(positive, 3),
    "input.shuffle_buffer": positive_int,
    "input.prefetch": positive_int,
    "input.skip_corrupt": boolean,
    "input.pipeline": one_of("store", "stream"),
    "input.store_dir": text,
    "input.store_size": nonneg_int,
    "input.inception_aspect_range": seq(positive, 2),
    "optimizer.name": one_of("sgd", "adamw", "rmsprop"),
    "optimizer.momentum": rate,
    "optimizer.nesterov": boolean,
    "optimizer.weight_decay": nonneg,
    "optimizer.decay_biases_and_norms": boolean,
    "optimizer.adam_b1": rate,
    "optimizer.adam_b2": rate,
    "optimizer.eps": positive,
    "optimizer.grad_clip_norm": nonneg,
    "schedule.name": one_of(*common.SCHEDULES),
    "schedule.base_lr": positive,
    "schedule.warmup_epochs": nonneg,
    "schedule.warmup_steps": nonneg_int,
    "schedule.factor": in_interval(0.0, 1.0, low_open=True),
    "schedule.patience": nonneg_int,
    "schedule.patience_steps": nonneg_int,
    "schedule.first_cut_step": nonneg_int,
    "schedule.max_reductions": nonneg_int,
    "schedule.cooldown": nonneg_int,
    "schedule.min_delta": nonneg,
    "schedule.step_epochs": seq(positive, nonempty_=False),
    "schedule.poly_power": positive,
    "batch_size": positive_int,
    "eval_batch_size": positive_int,
    "num_epochs": positive,
    "num_train_steps": count_or_unset,
    "label_smoothing": rate,
    "aux_loss_weight": nonneg,
    "dtype": one_of("float32", "bfloat16"),
    "log_every_steps": positive_int,
    "eval_every_epochs": positive,
    "checkpoint_every_steps": positive_int,
    "keep_checkpoints": positive_int,
    "async_checkpoints": boolean,
    "nan_guard": boolean,
    "keep_host_memory": boolean,
    "cpu_onednn": boolean,
    "mesh.data": count_or_unset,
    "mesh.model": positive_int,
    "mesh.strategy": one_of("data", "towers", "fc"),
    "eval.protocols": subset(*views.PROTOCOLS),
    "eval.sets": subset(*eval_sets.SETS),
    "eval.in_training.protocols": subset(*views.PROTOCOLS),
    "eval.in_training.sets": subset(*eval_sets.SETS),
    "eval.scales": seq(positive_int),
    "eval.googlenet_scales": seq(positive_int),
    "eval.batch_size": nonneg_int,
    "eval.real_json": text,
    "eval.v2_dir": text,
    "eval.minival_size": positive_int,
    "eval.top_confusions": nonneg_int,
}

# Numeric model fields that may be 0 (all others must be > 0), and rates in [0, 1).
MODEL_NONNEG = ("conv1_padding", "lrn_k", "lrn_beta")
MODEL_RATES = ("dropout", "aux_dropout")


def _model_problems(m: ml_collections.ConfigDict) -> list[str]:
  from alexnet_jax import models
  name = m.get("name")
  if name not in models.names():
    return [f"config.model.name={name!r}: choose one of {', '.join(models.names())}"]
  fields = models.config_fields(name)
  out = []
  for key, value in m.items():
    if key == "name":
      continue
    where = f"config.model.{key}={value!r}"
    if key not in fields:
      out.append(f"config.model.{key}: model {name!r} has no such field; it takes {', '.join(sorted(fields))}")
      continue
    default = fields[key]
    choices = model_choices.of(name, key)
    if choices is not None:
      if value not in choices:
        out.append(f"{where}: choose one of {', '.join(map(str, choices))}")
    elif isinstance(default, bool):
      if not isinstance(value, bool):
        out.append(f"{where}: True or False")
    elif isinstance(default, (int, float)):
      rule = rate if key in MODEL_RATES else nonneg if key in MODEL_NONNEG else positive
      if isinstance(default, int):
        rule = nonneg_int if key in MODEL_NONNEG else positive_int
      problem = rule(value)
      if problem:
        out.append(f"{where}: must be {problem}")
    elif isinstance(default, (tuple, list)):
      problem = seq(positive_int)(value)
      if problem:
        out.append(f"{where}: must be {problem}")
  if name == "resnet" and not out and m.depth < 50 and (m.groups != 1 or m.width_per_group != 64):
    out.append(f"config.model.groups={m.groups}, width_per_group={m.width_per_group}: grouped (ResNeXt) "
               f"bottlenecks need depth >= 50, got depth={m.depth}")
  return out


def _augment_problems(inp: ml_collections.ConfigDict) -> list[str]:
  """The train augmentation's checks across fields: the only place they are made (the input paths
  read `data.augmentation.TrainAugment` and re-check nothing)."""
  out = []
  if inp.resize_size < inp.image_size:
    out.append(f"config.input.resize_size={inp.resize_size}: must be >= config.input.image_size={inp.image_size}")
  low, high = inp.inception_aspect_range
  if low > high:
    out.append(f"config.input.inception_aspect_range={inp.inception_aspect_range!r}: must be (low, high) "
               "with low <= high")
  # A store keeps only the central square of each image (data/store.py), so a crop cannot reach outside it.
  if inp.pipeline == "store" and inp.train_crop == "random" and inp.crop_region == "full":
    out.append("config.input.crop_region='full': random crops anywhere in the image need the whole image, and "
               "config.input.pipeline='store' keeps only its central square; set "
               "config.input.crop_region=center_square or config.input.pipeline=stream")
  return out


def _dataset_problem(dataset: Any) -> str | None:
  if not isinstance(dataset, str) or not dataset.strip():
    return f"config.dataset={dataset!r}: set 'embedded', a TFDS name or an image-folder path"
  if dataset == "embedded" or os.path.isdir(dataset):
    return None
  first = dataset.split("/")[0]
  if dataset.startswith(("/", ".", "~")) or (first and "/" in dataset and os.path.isdir(first)):
    return f"config.dataset={dataset!r}: no such folder (an image folder is laid out as <root>/<split>/<class>/<image>)"
  import tensorflow_datasets as tfds
  base = dataset.split(":")[0].split("/")[0]
  try:
    tfds.builder_cls(base)
  except tfds.core.registered.DatasetNotFoundError:
    return (f"config.dataset={dataset!r}: tried it as a folder (no such folder) and as a TFDS dataset "
            f"name ({base!r} is not one); use 'embedded', a TFDS name such as 'imagenet2012' or 'cifar10', "
            "or an image-folder path")
  return None


def fits(model_cfg: ml_collections.ConfigDict, size: int) -> bool:
  """Whether the model gives non-empty feature maps and parameters on size×size inputs."""
  import jax
  import jax.numpy as jnp
  from alexnet_jax import models
  model = models.build_model(model_cfg, 10, jnp.float32)
  key = jax.random.key(0)
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  try:
    out = jax.eval_shape(lambda im: model.init({"params": key, "dropout": key}, im, train=False,
                                               capture_intermediates=True), x)
  except Exception:  # noqa: BLE001 - any shape error means this size does not fit
    return False
  return all(0 not in leaf.shape for leaf in jax.tree.leaves(out))


def smallest_input(model_cfg: ml_collections.ConfigDict, upto: int = 1024) -> int | None:
  """The smallest square input the model accepts (None if none up to `upto`)."""
  if not fits(model_cfg, upto):
    return None
  lo, hi = 1, upto  # hi fits; find the first size that fits (feature maps shrink monotonically)
  while lo < hi:
    mid = (lo + hi) // 2
    if fits(model_cfg, mid):
      hi = mid
    else:
      lo = mid + 1
  return hi


def problems(c: ml_collections.ConfigDict, *, check_data: bool = True, geometry: bool = True) -> list[str]:
  """One line per problem in `c` (empty when the config can run).

  `check_data=False` skips the dataset lookup and `geometry=False` the model trace (tests).
  """
  out = []
  for path, rule in RULES.items():
    try:
      value = common.get_field(c, path)
    except (KeyError, AttributeError):
      out.append(f"config.{path} is missing; the config must come from common.base_config()")
      continue
    problem = rule(value)
    if problem:
      out.append(f"config.{path}={value!r}: must be {problem}")
  inp = c.input
  if not out:
    out += _augment_problems(inp)
  if check_data:
    problem = _dataset_problem(c.get("dataset"))
    if problem:
      out.append(problem)
  model_problems = _model_problems(c.model)
  out += model_problems
  if geometry and not out and not fits(c.model, inp.image_size):
    smallest = smallest_input(c.model)
    if smallest:
      out.append(f"config.input.image_size={inp.image_size}: model {c.model.name!r} with these settings makes "
                 f"empty feature maps; it accepts inputs of at least {smallest} px (set res= or change the model)")
    else:
      out.append(f"config.model: model {c.model.name!r} with these settings has a layer with no channels at any "
                 "input size (a width, group or channel setting is too small)")
  return out


def check(c: ml_collections.ConfigDict, *, check_data: bool = True, geometry: bool = True) -> None:
  """Raises `ConfigError` listing every problem in `c`, one per line."""
  found = problems(c, check_data=check_data, geometry=geometry)
  if found:
    raise ConfigError("\n".join(found))
