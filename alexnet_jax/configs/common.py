"""Defaults shared by every config, and the config-string argument parser.

A config file is used as `--config=configs/alexnet.py:lrn=False,dropout=0.0,smoke`.
The text after the colon is a comma-separated list of `key=value` (or a bare `key`,
meaning `key=True`) arguments. Each family file declares its arguments and their
defaults; `common.ARGS` are accepted by every family:

  smoke      quick mode: the embedded offline dataset at reduced resolution and width,
             a few epochs; finishes in minutes on a laptop CPU.
  data       a TFDS dataset name (e.g. `cifar10`, `imagenet2012`), `embedded`, or the
             path of an image folder laid out as <root>/<split>/<class>/<image>.
  aug        train augmentation: `paper` (resize, random crop, flip, PCA lighting),
             `inception` (random-resized crop and flip), `flip` or `none`.
  epochs     number of training epochs (overrides the recipe).
  batch      global batch size (overrides the recipe).
  res        training and evaluation crop size (overrides the recipe).
  bf16       compute in bfloat16 with float32 parameters and optimizer state.
  seed       the run's seed (init, data order, augmentation, dropout).

Any field can also be set after the fact with `--config.<field>=<value>`. The returned
config is locked: a misspelt field is an error naming the field.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import ml_collections

# Arguments every config accepts (name → default; the type is the default's type).
ARGS: dict[str, Any] = {
    "smoke": False,
    "data": "",
    "aug": "",
    "epochs": -1.0,
    "batch": -1,
    "res": -1,
    "bf16": False,
    "seed": -1,
}

# ImageNet statistics in RGB order, on the 0..255 scale.
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
IMAGENET_STD_RGB = (58.393, 57.12, 57.375)
# "Fancy PCA" lighting (Krizhevsky 2012, Sec. 4.1): eigenvalues and eigenvectors (columns) of the
# 3×3 covariance of ImageNet RGB pixel values, scaled to 0..1 (the values used since fb.resnet.torch).
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def _convert(key: str, text: str, default: Any) -> Any:
  if isinstance(default, bool):
    low = text.lower()
    if low in ("1", "true", "yes", "on", ""):
      return True
    if low in ("0", "false", "no", "off"):
      return False
    raise ValueError(f"Config argument {key!r} expects a boolean (True/False), got {text!r}.")
  try:
    return type(default)(text)
  except ValueError:
    raise ValueError(
        f"Config argument {key!r} expects a {type(default).__name__}, got {text!r}.") from None


def parse_args(arg: str | None, family_args: Mapping[str, Any],
               smoke_args: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
  """Parses `key=value,flag,...` against the family's arguments plus `ARGS`.

  `smoke_args` are the family's defaults in quick mode: with `smoke` they replace the
  normal defaults, and arguments the user gave explicitly still win over both.
  """
  defaults = {**ARGS, **family_args}
  given: dict[str, Any] = {}
  for item in filter(None, (s.strip() for s in (arg or "").split(","))):
    key, eq, text = item.partition("=")
    key = key.strip()
    if key not in defaults:
      raise ValueError(
          f"Unknown config argument {key!r}. This config accepts: {', '.join(sorted(defaults))}.")
    if not eq and not isinstance(defaults[key], bool):
      raise ValueError(f"Config argument {key!r} needs a value, e.g. {key}={defaults[key]!r}.")
    given[key] = _convert(key, text.strip(), defaults[key])
  values = dict(defaults)
  if given.get("smoke") and smoke_args:
    unknown = set(smoke_args) - set(defaults)
    if unknown:
      raise ValueError(f"smoke_args name unknown arguments: {sorted(unknown)}")
    values.update(smoke_args)
  values.update(given)
  return ml_collections.ConfigDict(values)


def run_name(family: str, arg: str | None) -> str:
  """A folder-friendly name for the config and its arguments (used for the default workdir)."""
  if not arg:
    return family
  safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", arg.replace(",", "-").replace("/", "_")).strip("_")
  return f"{family}-{safe}"[:120]


def base_config() -> ml_collections.ConfigDict:
  """Every field the trainer reads, with defaults; families override what their paper says."""
  c = ml_collections.ConfigDict()
  c.name = "run"
  c.seed = 0

  # Data: a TFDS name, 'embedded', or an image-folder path.
  c.dataset = "imagenet2012"
  c.data_dir = ""  # TFDS data_dir; '' uses TFDS's default (~/tensorflow_datasets or $TFDS_DATA_DIR).
  c.train_split = "train"
  c.eval_split = "validation"
  c.embedded_train_size = 6000  # examples the embedded dataset renders per split (train)
  c.embedded_eval_size = 1000

  c.input = ml_collections.ConfigDict()
  c.input.image_size = 224      # crop fed to the network, train and eval
  c.input.resize_size = 256     # short side before cropping
  c.input.train_crop = "random"  # random | inception | center
  # Where `random` crops may lie: `center_square` (the 2012 paper, Sec. 2 and 4.1: the central
  # resize_size² square of the short-side-resized image, random image_size patches inside it) or
  # `full` (anywhere in the short-side-resized image).
  c.input.crop_region = "full"
  c.input.inception_min_area = 0.08  # random-resized crop: smallest area fraction
  c.input.flip = True
  c.input.pca_lighting = 0.1    # σ of the PCA lighting noise; 0 turns it off
  c.input.pca_eigval = IMAGENET_PCA_EIGVAL
  c.input.pca_eigvec = IMAGENET_PCA_EIGVEC
  c.input.mean_rgb = IMAGENET_MEAN_RGB
  c.input.std_rgb = (1.0, 1.0, 1.0)  # AlexNet only subtracts the mean
  c.input.shuffle_buffer = 16384
  c.input.prefetch = 2           # batches prefetched to the devices
  c.input.skip_corrupt = True    # image folders: skip unreadable files (counted and logged)
  # Input path: 'store' trains from a prepared store of uint8 squares (alexnet_jax/data/store.py;
  # prepared on first use or with --mode=prepare) with crop, flip, lighting and normalisation on the
  # device; 'stream' decodes and augments every image with tf.data on the host.
  c.input.pipeline = "stream"
  c.input.store_dir = ""         # folder of prepared stores; '' → $ALEXNET_JAX_DATA or ~/alexnet_jax_data
  c.input.store_size = 0         # stored square side S (short side → S, central S²); 0 → resize_size
  c.input.inception_aspect_range = (3 / 4, 4 / 3)  # random-resized crop: width/height range

  c.model = ml_collections.ConfigDict()
  c.model.name = "alexnet"

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "sgd"       # sgd | adamw | rmsprop
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = False
  c.optimizer.weight_decay = 5e-4
  c.optimizer.decay_biases_and_norms = True  # the paper decays every weight
  c.optimizer.adam_b1 = 0.9
  c.optimizer.adam_b2 = 0.999
  c.optimizer.eps = 1e-8
  c.optimizer.grad_clip_norm = 0.0  # 0 = no clipping

  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = "plateau"    # plateau | step | cosine | constant | poly
  c.schedule.base_lr = 0.01
  c.schedule.warmup_epochs = 0.0
  c.schedule.factor = 0.1        # plateau and step: multiply the rate by this
  c.schedule.patience = 3        # plateau: evaluations without improvement before a drop
  c.schedule.max_reductions = 3  # plateau: the paper divided by 10 three times
  c.schedule.cooldown = 0
  c.schedule.min_delta = 1e-3    # plateau: relative improvement that counts
  c.schedule.step_epochs = (30.0, 60.0, 80.0)  # step: epochs at which to multiply by `factor`
  c.schedule.poly_power = 0.5    # poly: (1 - t)^power (GoogLeNet-style)

  c.batch_size = 128             # global, over all devices and hosts
  c.eval_batch_size = 128        # global
  c.num_epochs = 90.0
  c.num_train_steps = -1         # > 0 overrides num_epochs
  c.label_smoothing = 0.0
  c.aux_loss_weight = 0.3        # models with auxiliary heads (GoogLeNet)
  c.dtype = "float32"            # compute dtype: float32 | bfloat16

  c.log_every_steps = 50
  c.eval_every_epochs = 1.0
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.async_checkpoints = True
  c.nan_guard = True

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1               # -1: every device not used by `model`
  c.mesh.model = 1               # >1 splits towers / FC layers across devices (see parallel.py)
  c.mesh.strategy = "data"       # data | towers | fc  (the 2012 split, or Krizhevsky 2014)

  # Evaluation protocols and sets (alexnet_jax/evaluate.py; `--mode=eval`).
  c.eval = ml_collections.ConfigDict()
  c.eval.protocols = ("center",)   # center | 10crop | multiscale | 144crop
  c.eval.sets = ("validation",)    # validation | real | v2 | minival
  c.eval.scales = (256, 384, 512)  # multiscale: test scales Q for a 224 crop (scaled with image_size)
  c.eval.googlenet_scales = (256, 288, 320, 352)  # 144crop: short sides for a 224 crop (scaled likewise)
  c.eval.batch_size = 0            # images per eval batch (global); 0: eval_batch_size // views per image
  c.eval.real_json = ""            # ReaL labels (real.json); '' uses TFDS imagenet2012_real if prepared
  c.eval.v2_dir = ""               # ImageNet-V2 folder (<dir>/<class index>/<image>); '' uses TFDS imagenet_v2
  c.eval.minival_size = 10000      # minival: the last N examples of the train split
  c.eval.top_confusions = 20       # most-confused class pairs listed per protocol and set
  return c


def apply_common_args(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict,
                      smoke: Callable[[ml_collections.ConfigDict], None] | None = None) -> None:
  """Applies the shared arguments (`ARGS`) to config `c` in place."""
  if args.smoke:
    c.dataset = "embedded"
    c.eval_split = "validation"
    c.input.image_size = 64
    c.input.resize_size = 72
    c.input.shuffle_buffer = 8192
    c.input.pipeline = "store"  # a 72² store of the embedded set (~100 MB at 6000 train images)
    # Families' quick modes use He-style init, which expects unit-scale inputs.
    c.input.std_rgb = IMAGENET_STD_RGB
    c.batch_size = 64
    c.eval_batch_size = 250
    c.num_epochs = 5.0
    c.schedule.name = "cosine"
    c.schedule.warmup_epochs = 0.5
    c.log_every_steps = 25
    c.checkpoint_every_steps = 200
    c.keep_checkpoints = 2
    if smoke is not None:
      smoke(c)
  if args.data:
    c.dataset = args.data
  if args.aug:
    set_augmentation(c, args.aug)
  if args.epochs > 0:
    c.num_epochs = args.epochs
  if args.batch > 0:
    c.batch_size = args.batch
  if args.res > 0:
    c.input.image_size = args.res
    c.input.resize_size = int(round(args.res * 256 / 224))
  if args.bf16:
    c.dtype = "bfloat16"
  if args.seed >= 0:
    c.seed = args.seed


def set_augmentation(c: ml_collections.ConfigDict, aug: str) -> None:
  presets = {
      "paper": dict(train_crop="random", flip=True, pca_lighting=0.1),
      "inception": dict(train_crop="inception", flip=True, pca_lighting=0.0),
      "flip": dict(train_crop="center", flip=True, pca_lighting=0.0),
      "none": dict(train_crop="center", flip=False, pca_lighting=0.0),
  }
  if aug not in presets:
    raise ValueError(f"aug={aug!r} is not known; choose one of {', '.join(presets)}.")
  c.input.update(presets[aug])


# Input normalisation presets on the 0..255 scale: (mean_rgb, std_rgb).
NORMS = {
    "mean": (IMAGENET_MEAN_RGB, (1.0, 1.0, 1.0)),
    "torchvision": (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB),
    "inception": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
}


def set_normalisation(c: ml_collections.ConfigDict, norm: str) -> None:
  """Sets input.mean_rgb/std_rgb; converted torchvision weights need the statistics they were trained with."""
  if norm not in NORMS:
    raise ValueError(f"norm={norm!r} is not known; choose one of {', '.join(NORMS)}.")
  c.input.mean_rgb, c.input.std_rgb = NORMS[norm]


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Locks the config so a misspelt `--config.field` override is an error."""
  c.lock()
  return c
