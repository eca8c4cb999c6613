"""Defaults shared by every config, the config-string arguments, and the one override order.

A config file is used as `--config=configs/alexnet.py:lrn=False,dropout=0.0,smoke`.
The text after the colon is a comma-separated list of `key=value` (or a bare `key`,
meaning `key=True`) arguments. Each family file declares its arguments (`Arg`s); `ARGS`
are accepted by every family:

  smoke      quick mode: the embedded offline dataset at reduced resolution and width,
             a few epochs; finishes in minutes on a laptop CPU.
  data       a TFDS dataset name (e.g. `cifar10`, `imagenet2012`), `embedded`, or the
             path of an image folder laid out as <root>/<split>/<class>/<image>.
  aug        train augmentation: `paper` (resize, random crop, flip, PCA lighting),
             `inception` (random-resized crop and flip), `flip` or `none`.
  epochs     number of training epochs (overrides the recipe).
  batch      global batch size (overrides the recipe); the learning rate scales with it.
  res        training and evaluation crop size (overrides the recipe).
  bf16       compute in bfloat16 with float32 parameters and optimizer state.
  seed       the run's seed (init, data order, augmentation, dropout).

Every family builds its config through `make`, in one order: `base_config()` defaults,
then the family's recipe, then the family arguments (their defaults or given values),
then quick mode (`smoke`), then the arguments given explicitly again (so an explicit
`lr=` or `sched=` always wins over quick mode), then the linear scaling rule (below), then
`--config.<field>=<value>` on the
command line (applied by ml_collections after `get_config`). The returned config is
locked: a misspelt field is an error naming the field. `alexnet_jax.configs.validate`
checks the finished config before anything runs.

`lr=` means one thing in every family and mode: the learning rate at the batch the recipe
(or quick mode) trains with. When `batch=` sets another batch, the rate, given or default,
is scaled linearly with it (Goyal et al. 2017): `resnet:batch=512,lr=0.1` trains at 0.2,
`resnet:smoke,batch=128,lr=0.05` at 0.1. `--config.schedule.base_lr` sets the rate as is.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping

import ml_collections

from alexnet_jax.errors import ConfigError
from alexnet_jax import model_choices

Setter = Callable[[ml_collections.ConfigDict, Any, ml_collections.ConfigDict], None]


@dataclasses.dataclass(frozen=True)
class Arg:
  """One config-string argument: its type, default, checks and the config field it sets.

  `default=None` means "the recipe decides": the argument is applied only when given.
  `to(value, args)` turns the argument into the field's value (e.g. a width scaled for
  quick mode); `apply(c, value, args)` sets further fields. `low` is the smallest value
  accepted (`low_open`: the value must be larger), `high` the largest (exclusive).
  """

  type: type
  default: Any = None
  field: str = ""
  choices: tuple = ()
  low: float | None = None
  low_open: bool = False
  high: float | None = None
  to: Callable[[Any, ml_collections.ConfigDict], Any] | None = None
  apply: Setter | None = None

  def check(self, key: str, value: Any) -> str | None:
    """The problem with `value` as this argument, or None."""
    if self.choices and value not in self.choices:
      return f"{key}={value!r}: choose one of {', '.join(map(str, self.choices))}"
    if self.low is not None and (value <= self.low if self.low_open else value < self.low):
      return f"{key}={value!r}: must be {'>' if self.low_open else '>='} {self.low:g}"
    if self.high is not None and value >= self.high:
      return f"{key}={value!r}: must be < {self.high:g}"
    return None

  def set(self, c: ml_collections.ConfigDict, value: Any, args: ml_collections.ConfigDict) -> None:
    if self.field:
      set_field(c, self.field, self.to(value, args) if self.to else value)
    if self.apply:
      self.apply(c, value, args)


def positive(type_: type, default: Any = None, field: str = "", **kw) -> Arg:
  return Arg(type_, default, field, low=0, low_open=True, **kw)


def rate(default: Any = None, field: str = "", **kw) -> Arg:
  """A probability such as a dropout rate: 0 <= value < 1."""
  return Arg(float, default, field, low=0.0, high=1.0, **kw)


def get_field(c: ml_collections.ConfigDict, path: str) -> Any:
  for part in path.split("."):
    c = c[part]
  return c


def set_field(c: ml_collections.ConfigDict, path: str, value: Any) -> None:
  *parents, last = path.split(".")
  for part in parents:
    c = c[part]
  c[last] = value


# ImageNet statistics in RGB order, on the 0..255 scale: the mean image of the Caffe models
# (the paper subtracts a mean), and torchvision's 0..1 mean/std × 255 (its released weights).
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
IMAGENET_STD_RGB = (58.393, 57.12, 57.375)
# Quick mode divides inputs by about this (the mean of IMAGENET_STD_RGB); LRN layers scale α by its
# square so their normalisation term has the size it has on the pixel scale (see configs/alexnet.py).
PIXEL_SCALE = 57.6
TORCHVISION_MEAN_RGB = (123.675, 116.28, 103.53)
TORCHVISION_STD_RGB = (58.395, 57.12, 57.375)
# "Fancy PCA" lighting (Krizhevsky 2012, Sec. 4.1): eigenvalues and eigenvectors (columns) of the
# 3×3 covariance of ImageNet RGB pixel values, scaled to 0..1 (the values used since fb.resnet.torch).
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

ACTIVATIONS = model_choices.ACTIVATIONS
INIT_SCHEMES = model_choices.INIT_SCHEMES
SCHEDULES = ("plateau", "step", "cosine", "constant", "poly")

AUGMENTATIONS = {
    "paper": dict(train_crop="random", flip=True, pca_lighting=0.1),
    "inception": dict(train_crop="inception", flip=True, pca_lighting=0.0),
    "flip": dict(train_crop="center", flip=True, pca_lighting=0.0),
    "none": dict(train_crop="center", flip=False, pca_lighting=0.0),
}

# Input normalisation presets on the 0..255 scale: (mean_rgb, std_rgb).
NORMS = {
    "mean": (IMAGENET_MEAN_RGB, (1.0, 1.0, 1.0)),
    "torchvision": (TORCHVISION_MEAN_RGB, TORCHVISION_STD_RGB),
    "inception": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
}


def set_normalisation(c: ml_collections.ConfigDict, norm: str) -> None:
  """Sets input.mean_rgb/std_rgb; converted torchvision weights need the statistics they were trained with."""
  c.input.mean_rgb, c.input.std_rgb = NORMS[norm]


def norm_arg(default: Any = "mean") -> Arg:
  return Arg(str, default, choices=tuple(NORMS), apply=lambda c, v, a: set_normalisation(c, v))


def _set_res(c: ml_collections.ConfigDict, res: int, args: ml_collections.ConfigDict) -> None:
  c.input.image_size = res
  c.input.resize_size = int(round(res * 256 / 224))


# Arguments every config accepts; each applies only when given (the recipe decides otherwise).
ARGS: dict[str, Arg] = {
    "smoke": Arg(bool, False),
    "data": Arg(str, None, "dataset"),
    "aug": Arg(str, None, choices=tuple(AUGMENTATIONS), apply=lambda c, v, a: c.input.update(AUGMENTATIONS[v])),
    "epochs": positive(float, None, "num_epochs"),
    "batch": positive(int, None, "batch_size"),
    "res": positive(int, None, "input.image_size", apply=_set_res),
    "bf16": Arg(bool, None, "dtype", to=lambda v, a: "bfloat16" if v else "float32"),
    "seed": Arg(int, None, "seed", low=0),
}


def _convert(key: str, text: str, type_: type) -> Any:
  if type_ is bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on", ""):
      return True
    if low in ("0", "false", "no", "off"):
      return False
    raise ConfigError(f"config argument {key}={text!r}: expects a boolean (True/False).")
  try:
    return type_(text)
  except ValueError:
    raise ConfigError(f"config argument {key}={text!r}: expects {type_.__name__ }.") from None


def parse_args(arg: str | None, spec: Mapping[str, Arg]) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
  """Parses `key=value,flag,...` against `spec`: (every argument's value, the ones given).

  Raises `ConfigError` with one line per problem (unknown name, wrong type, bad value).
  """
  given: dict[str, Any] = {}
  problems = []
  for item in filter(None, (s.strip() for s in (arg or "").split(","))):
    key, eq, text = item.partition("=")
    key = key.strip()
    if key not in spec:
      problems.append(f"Unknown config argument {key!r}; this config accepts: {', '.join(sorted(spec))}")
      continue
    if not eq and spec[key].type is not bool:
      problems.append(f"config argument {key!r} needs a value, e.g. {key}={spec[key].default!r}")
      continue
    try:
      value = _convert(key, text.strip(), spec[key].type)
    except ConfigError as e:
      problems.append(str(e))
      continue
    problem = spec[key].check(key, value)
    if problem:
      problems.append(f"config argument {problem}")
    given[key] = value
  if problems:
    raise ConfigError("\n".join(problems))
  values = {k: given.get(k, a.default) for k, a in spec.items()}
  return ml_collections.ConfigDict(values), given


Recipe = Callable[[ml_collections.ConfigDict, ml_collections.ConfigDict], None]


def make(family: str, arg: str | None, family_args: Mapping[str, Arg], recipe: Recipe,
         smoke: Recipe | None = None) -> ml_collections.ConfigDict:
  """Builds a family's config in the one override order (see the module docstring).

  `recipe(c, args)` writes the paper's recipe and `smoke(c, args)` the family's quick
  mode; both may read `args` (every argument's value), and neither needs to care about
  explicit arguments, which are applied after both.
  """
  spec = {**ARGS, **family_args}
  args, given = parse_args(arg, spec)
  c = base_config()
  c.name = run_name(family, arg)
  recipe(c, args)
  for key, a in family_args.items():
    if args[key] is not None:
      a.set(c, args[key], args)
  if args.smoke:
    quick_mode(c)
    if smoke is not None:
      smoke(c, args)
  recipe_batch = c.batch_size
  for key, value in given.items():
    if key != "smoke":
      spec[key].set(c, value, args)
  c.schedule.base_lr *= c.batch_size / recipe_batch  # `lr` is the rate at the recipe's batch
  c.lock()
  return c


def quick_mode(c: ml_collections.ConfigDict) -> None:
  """What `smoke` changes in every family: the embedded dataset, 64 px, a few epochs."""
  c.dataset = "embedded"
  c.eval_split = "validation"
  c.input.image_size = 64
  c.input.resize_size = 72
  c.input.shuffle_buffer = 8192
  c.input.pipeline = "store"  # a 72² store of the embedded set (~100 MB at 6000 train images)
  c.input.crop_region = "center_square"  # all a store holds (its square images: the whole image)
  # Quick modes use He-style init, which expects unit-scale inputs; families with LRN scale
  # its α to match, so α·Σa² keeps its size on the paper's pixel scale (see their `smoke`).
  c.input.std_rgb = IMAGENET_STD_RGB
  c.batch_size = 64
  c.eval_batch_size = 250
  c.num_epochs = 5.0
  c.schedule.name = "cosine"
  c.schedule.warmup_epochs = 0.5
  c.log_every_steps = 25
  c.checkpoint_every_steps = 200
  c.keep_checkpoints = 2


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
  # `full` (anywhere in the short-side-resized image; the stream pipeline only, as a store keeps
  # the central square alone). Both input paths read these fields through
  # data/augmentation.TrainAugment; their defaults are stated here only.
  c.input.crop_region = "full"
  c.input.inception_min_area = 0.08  # random-resized crop: smallest area fraction
  c.input.inception_aspect_range = (3 / 4, 4 / 3)  # random-resized crop: width/height range
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

  c.model = ml_collections.ConfigDict()
  c.model.name = "alexnet"

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "sgd"       # sgd | adamw | rmsprop
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = False
  c.optimizer.weight_decay = 5e-4
  # Decay every parameter (the paper is silent on biases); False: Caffe's no decay on biases and norms.
  c.optimizer.decay_biases_and_norms = True
  c.optimizer.adam_b1 = 0.9
  c.optimizer.adam_b2 = 0.999
  c.optimizer.eps = 1e-8
  c.optimizer.grad_clip_norm = 0.0  # 0 = no clipping

  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = "plateau"    # plateau | step | cosine | constant | poly
  c.schedule.base_lr = 0.01
  c.schedule.warmup_epochs = 0.0
  c.schedule.warmup_steps = 0    # > 0: the linear warm-up's length in steps, used instead of warmup_epochs
  c.schedule.factor = 0.1        # plateau and step: multiply the rate by this
  c.schedule.patience = 3        # plateau: evaluations without improvement before a drop
  # plateau, counted in training steps (0: unused): steps without improvement before a drop (used
  # instead of `patience`), and the earliest step at which a drop may happen.
  c.schedule.patience_steps = 0
  c.schedule.first_cut_step = 0
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
  c.eval_every_epochs = 1.0      # how often training runs config.eval.in_training
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.async_checkpoints = True
  c.nan_guard = True
  # CPU: glibc's malloc keeps freed memory, so XLA's per-step buffers are not mapped afresh
  # (page faults) every step; the process keeps its peak memory (alexnet_jax/host_memory.py).
  c.keep_host_memory = True
  # CPU: XLA runs the convolutions and products YNNPACK does not take with oneDNN instead of
  # Eigen (xla_cpu_experimental_onednn_custom_call; alexnet_jax/xla_cpu.py).
  c.cpu_onednn = True

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1               # -1: every device not used by `model`
  c.mesh.model = 1               # >1 splits towers / FC layers across devices (see parallel.py)
  c.mesh.strategy = "data"       # data | towers | fc  (the 2012 split, or Krizhevsky 2014)

  # Evaluation protocols and sets (alexnet_jax/eval/), one evaluator for both uses: what
  # `--mode=eval` runs by default, and what training runs every eval_every_epochs (the first
  # protocol on the first set is logged as eval/top1 etc. and drives the plateau schedule).
  c.eval = ml_collections.ConfigDict()
  c.eval.protocols = ("center",)   # center | 10crop | multiscale | 144crop
  c.eval.sets = ("validation",)    # validation | real | v2 | minival
  c.eval.in_training = ml_collections.ConfigDict()
  c.eval.in_training.protocols = ("center",)  # the others log as eval/<protocol>/<set>/top1 etc.
  c.eval.in_training.sets = ("validation",)
  c.eval.scales = (256, 384, 512)  # multiscale: test scales Q for a 224 crop (scaled with image_size)
  c.eval.googlenet_scales = (256, 288, 320, 352)  # 144crop: short sides for a 224 crop (scaled likewise)
  c.eval.batch_size = 0            # images per eval batch (global); 0: eval_batch_size // views per image
  c.eval.real_json = ""            # ReaL labels (real.json); '' uses TFDS imagenet2012_real if prepared
  c.eval.v2_dir = ""               # ImageNet-V2 folder (<dir>/<class index>/<image>); '' uses TFDS imagenet_v2
  c.eval.minival_size = 10000      # minival: the last N examples of the train split
  c.eval.top_confusions = 20       # most-confused class pairs listed per protocol and set
  return c
