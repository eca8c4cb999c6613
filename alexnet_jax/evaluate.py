"""Evaluate a checkpoint the way the papers did: test-time protocols × evaluation sets.

Why this exists: a headline ImageNet number mixes three things: the network, the test-time
protocol (one centre crop, AlexNet's 10 crops, VGG's multi-scale, GoogLeNet's 144 crops) and
the labels it is scored against (the original validation labels, ImageNet-ReaL's
re-assessed label sets, the fresh ImageNet-V2 test set). This module runs any combination
on a trained checkpoint, and writes a report that puts the result beside the paper's
number so a reader can see how much of the headline is protocol and labels.

Protocols (`config.eval.protocols`); each turns one image into V views of S×S pixels
(S = config.input.image_size), the model's softmax probabilities are averaged over the V
views on the device, and the average is scored:

  center      V=1: short side → config.input.resize_size, central S×S crop (training's eval).
  10crop      V=10 (Krizhevsky et al. 2012, Sec. 4.1): short side → resize_size, the central
              resize_size square, its four corner S×S crops and its centre crop, plus their
              mirror images.
  multiscale  V=10·|Q| (Simonyan & Zisserman 2015, Sec. 3.2), implemented with *crops*, not
              dense (fully-convolutional) evaluation, since most models here end in fixed-size
              FC layers: for each test scale Q the short side → Q, then the same 5 crops +
              mirrors of the central Q square as 10crop. Q is `config.eval.scales`, given for a
              224 crop and scaled by S/224 (so (256, 384, 512) at S=224).
  144crop     V=144 (Szegedy et al. 2015, Sec. 10): 4 short sides (`config.eval.googlenet_scales`,
              scaled by S/224) × 3 squares (left/centre/right, or top/centre/bottom, of the
              long side) × 6 crops (4 corners, centre, and the whole square resized to S) × 2
              mirrors.

Evaluation sets (`config.eval.sets`), each scored top-1 and top-5:

  validation  config.eval_split of the configured dataset, through the input pipeline.
  minival     the last `config.eval.minival_size` examples of the train split (TFDS datasets:
              split slicing `train[-N:]`). The train stream does *not* exclude them unless
              you train with `--config.train_split='train[:-N]'`; the result records whether
              minival overlapped the training data ("minival_in_train").
  real        ImageNet-ReaL (Beyer et al. 2020): a prediction counts when it is any of the
              image's re-assessed labels (top-5: any of the five is); images whose label list
              is empty are skipped. From `config.eval.real_json` (google-research/
              reassessed-imagenet real.json, in validation-file order) matched to the
              validation images by their file names, or TFDS `imagenet2012_real`.
  v2          ImageNet-V2 matched-frequency (Recht et al. 2019): `config.eval.v2_dir`
              (<dir>/<class index>/<image>) or TFDS `imagenet_v2`.

Every image counts exactly once: batches are padded with masked blanks (the input
pipeline's contract), and crops of one image stay together in a [B, V, S, S, 3] batch.

Outputs under <workdir>/eval/: step_<N>.json (all results), per_class_<protocol>_<set>.csv
(accuracy per class), confusions_<protocol>_<set>.{md,json} (the most-confused pairs),
report.md (the table beside the papers' numbers).

  python main.py --config=configs/alexnet.py:smoke --mode=eval --protocols=center,10crop
  python -m alexnet_jax.evaluate --config=configs/alexnet.py:smoke --workdir=runs/x
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import re
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from alexnet_jax.errors import ConfigError

PROTOCOLS = ("center", "10crop", "multiscale", "144crop")
SETS = ("validation", "minival", "real", "v2")
REFERENCE_CROP = 224  # the crop size the papers' scales refer to
REAL_URL = "https://github.com/google-research/reassessed-imagenet (file real.json)"
V2_URL = ("https://huggingface.co/datasets/vaishaal/ImageNetV2 "
          "(imagenetv2-matched-frequency.tar.gz)")

# Reported single-model ILSVRC-2012 errors (%), protocol and set as in the paper.
HUMAN_TOP5_ERROR = 5.1  # Russakovsky et al. 2015 (IJCV), Sec. 6.4: the trained annotator A1.
PAPER_RESULTS: dict[str, list[dict[str, Any]]] = {
    "alexnet": [
        dict(model="AlexNet, 1 CNN", protocol="10crop", set="validation", top1_err=40.7, top5_err=18.2,
             source="Krizhevsky et al. 2012, Table 2"),
    ],
    "zfnet": [
        dict(model="ZFNet, 1 convnet", protocol="10crop", set="validation", top1_err=38.4, top5_err=16.5,
             source="Zeiler & Fergus 2014, Table 2"),
    ],
    "vgg": [
        dict(model="VGG-16 (D), train [256;512]", protocol="multiscale (dense)", set="validation",
             top1_err=24.8, top5_err=7.5, source="Simonyan & Zisserman 2015, Table 4"),
        dict(model="VGG-19 (E), train [256;512]", protocol="multiscale (dense)", set="validation",
             top1_err=24.8, top5_err=7.5, source="Simonyan & Zisserman 2015, Table 4"),
    ],
    "googlenet": [
        dict(model="GoogLeNet, 1 model", protocol="center", set="validation", top1_err=None,
             top5_err=10.07, source="Szegedy et al. 2015, Table 5 (1 crop)"),
        dict(model="GoogLeNet, 1 model", protocol="10crop", set="validation", top1_err=None,
             top5_err=9.15, source="Szegedy et al. 2015, Table 5 (10 crops)"),
        dict(model="GoogLeNet, 1 model", protocol="144crop", set="validation", top1_err=None,
             top5_err=7.89, source="Szegedy et al. 2015, Table 5 (144 crops)"),
    ],
    "resnet": [
        dict(model="ResNet-50", protocol="10crop", set="validation", top1_err=22.85, top5_err=6.71,
             source="He et al. 2016, Table 3"),
        dict(model="ResNet-152", protocol="10crop", set="validation", top1_err=21.43, top5_err=5.71,
             source="He et al. 2016, Table 3"),
    ],
    "squeezenet": [
        dict(model="SqueezeNet 1.0", protocol="as reported", set="validation", top1_err=42.5,
             top5_err=19.7, source="Iandola et al. 2016, Table 2 (57.5% / 80.3% accuracy)"),
    ],
}


def _data():
  """The input pipeline (TensorFlow), imported when an evaluation actually reads data."""
  from alexnet_jax.data import input_pipeline
  return input_pipeline


def _data_error(message: str) -> Exception:
  return _data().DataError(message)


# ----------------------------------------------------------------------------- crop geometry
# Offsets are plain arithmetic, so the same functions serve Python ints (tests) and int32
# tensors (inside tf.data, where image sizes are only known at run time).


def five_crop_offsets(height, width, size) -> list[tuple[Any, Any]]:
  """(top, left) of the four corner crops and the centre crop of a size×size window.

  Order: top-left, top-right, bottom-left, bottom-right, centre.
  """
  bottom, right = height - size, width - size
  return [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]


def three_square_offsets(height, width, side) -> list[tuple[Any, Any]]:
  """(top, left) of the first, central and last side×side squares along the long side."""
  dh, dw = height - side, width - side
  return [(0, 0), (dh // 2, dw // 2), (dh, dw)]


def scaled_sizes(scales: Sequence[int], image_size: int) -> tuple[int, ...]:
  """Test scales given for a 224 crop, rescaled to this config's crop size."""
  out = tuple(int(round(q * image_size / REFERENCE_CROP)) for q in scales)
  if not out or min(out) < image_size:
    raise ConfigError(f"Test scales {tuple(scales)} (→ {out} at image_size {image_size}) must be "
                     f"non-empty and each ≥ {REFERENCE_CROP} (the crop they are given for).")
  return out


def num_views(protocol: str, eval_cfg) -> int:
  """Views per image that `protocol` evaluates and averages."""
  check_protocols([protocol])
  if protocol == "center":
    return 1
  if protocol == "10crop":
    return 10
  if protocol == "multiscale":
    return 10 * len(eval_cfg.scales)
  return 3 * 6 * 2 * len(eval_cfg.googlenet_scales)


def _check_names(names: Iterable[str], known: Sequence[str], what: str, where: str) -> tuple[str, ...]:
  names = tuple(names)
  bad = [n for n in names if n not in known]
  if bad or not names:
    raise ConfigError(f"Unknown {what} {bad or '(none given)'}; choose from {', '.join(known)} ({where}).")
  return names


def check_protocols(protocols: Iterable[str]) -> tuple[str, ...]:
  return _check_names(protocols, PROTOCOLS, "evaluation protocol(s)", "config.eval.protocols or --protocols")


def check_sets(sets: Iterable[str]) -> tuple[str, ...]:
  return _check_names(sets, SETS, "evaluation set(s)", "config.eval.sets or --sets")


# ----------------------------------------------------------------------------- view makers (TF)


def _tf():
  import tensorflow as tf
  return tf


def _crop(image, top, left, size: int):
  return image[top:top + size, left:left + size]


def _with_mirrors(views: list) -> Any:
  """[views..., mirrored views...] stacked to [2·len(views), S, S, 3]."""
  tf = _tf()
  stacked = tf.stack(views)
  return tf.concat([stacked, tf.reverse(stacked, axis=[2])], axis=0)


def _five_crops(square, size: int) -> list:
  shape = _tf().shape(square)
  return [_crop(square, t, l, size) for t, l in five_crop_offsets(shape[0], shape[1], size)]


def ten_crop_views(image, size: int, resize_size: int):
  """AlexNet's 10 views of a float image: 5 crops of the central resize_size square + mirrors."""
  from alexnet_jax.data import augment
  square = augment.center_crop(augment.resize_short_side(image, resize_size), resize_size)
  return _with_mirrors(_five_crops(square, size))


def multiscale_views(image, size: int, scales: Sequence[int]):
  """VGG-style multi-scale crops: 10crop's views at each short side Q in `scales`."""
  tf = _tf()
  return tf.concat([ten_crop_views(image, size, q) for q in scales], axis=0)


def googlenet_views(image, size: int, scales: Sequence[int]):
  """GoogLeNet's 144 views (for 4 scales): scales × 3 squares × (5 crops + whole square) × 2."""
  from alexnet_jax.data import augment
  tf = _tf()
  views = []
  for q in scales:
    resized = augment.resize_short_side(image, q)
    shape = tf.shape(resized)
    for top, left in three_square_offsets(shape[0], shape[1], q):
      square = _crop(resized, top, left, q)
      whole = augment.resize(square, [size, size])
      views.append(_with_mirrors(_five_crops(square, size) + [whole]))
  return tf.concat(views, axis=0)


def make_preprocess(protocol: str, config) -> Callable[[Any], Any]:
  """uint8 [H, W, 3] → float32 [V, S, S, 3], normalised like training's input."""
  from alexnet_jax.data import augment
  tf = _tf()
  check_protocols([protocol])
  size = int(config.input.image_size)
  resize_size = int(config.input.resize_size)
  n = num_views(protocol, config.eval)
  if protocol == "center":
    center = _data().default_eval_preprocess(config)
    return lambda image: tf.expand_dims(center(image), 0)
  if protocol == "10crop":
    if resize_size < size:
      raise ConfigError(f"10crop needs config.input.resize_size ({resize_size}) ≥ image_size ({size}).")
    make = functools.partial(ten_crop_views, size=size, resize_size=resize_size)
  elif protocol == "multiscale":
    make = functools.partial(multiscale_views, size=size, scales=scaled_sizes(config.eval.scales, size))
  else:
    make = functools.partial(googlenet_views, size=size,
                             scales=scaled_sizes(config.eval.googlenet_scales, size))

  def fn(image):
    views = make(tf.cast(augment.ensure_rgb(image), tf.float32))
    return tf.ensure_shape(_data().normalize(views, config), [n, size, size, 3])

  return fn


def images_per_batch(config, protocol: str, multiple: int = 1) -> int:
  """Global images per batch: config.eval.batch_size, or eval_batch_size // views, a multiple of `multiple`."""
  if int(config.eval.batch_size) > 0:
    b = int(config.eval.batch_size)
    if b % multiple:
      raise ConfigError(f"config.eval.batch_size={b} must be a multiple of {multiple} (devices × processes).")
    return b
  per = int(config.eval_batch_size) // num_views(protocol, config.eval)
  return max(multiple, per // multiple * multiple)


# ----------------------------------------------------------------------------- scoring


def topk_hits(topk: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(top-1 correct, top-5 correct) per example from the top-k class indices [B, k]."""
  labels = np.asarray(labels)[:, None]
  return topk[:, 0] == labels[:, 0], np.any(topk[:, :5] == labels, axis=1)


def real_hits(topk: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """ReaL scoring: (top-1 in the label set, any of top-5 in the set, has labels) per example.

  `real` is [B, K] with each image's labels padded by -1; an all -1 row (no valid label) is
  not scored.
  """
  real = np.asarray(real)
  valid = np.any(real >= 0, axis=1)
  top1 = np.any(topk[:, :1, None] == real[:, None, :], axis=(1, 2)) & valid
  top5 = np.any(topk[:, :5, None] == real[:, None, :], axis=(1, 2)) & valid
  return top1, top5, valid


@dataclasses.dataclass
class Tally:
  """Host-side sums over an evaluation: accuracy, loss, per-class counts and confusions."""
  num_classes: int
  count: float = 0.0
  top1: float = 0.0
  top5: float = 0.0
  nll: float = 0.0
  skipped: float = 0.0
  class_total: np.ndarray = None
  class_top1: np.ndarray = None
  confusion: np.ndarray = None  # [true, predicted] counts

  def __post_init__(self):
    c = self.num_classes
    self.class_total = np.zeros(c, np.int64)
    self.class_top1 = np.zeros(c, np.int64)
    self.confusion = np.zeros((c, c), np.int64)

  def add(self, topk: np.ndarray, nll: np.ndarray, labels: np.ndarray, mask: np.ndarray,
          real: np.ndarray | None = None) -> None:
    """Adds one batch; examples with mask 0 (padding) are ignored."""
    keep = np.asarray(mask) > 0
    topk, nll, labels = np.asarray(topk)[keep], np.asarray(nll)[keep], np.asarray(labels)[keep]
    if real is not None:
      h1, h5, valid = real_hits(topk, np.asarray(real)[keep])
      self.skipped += float((~valid).sum())
      self.count += float(valid.sum())
      self.nll += float(nll[valid].sum())
    else:
      h1, h5 = topk_hits(topk, labels)
      self.count += float(len(labels))
      self.nll += float(nll.sum())
      np.add.at(self.class_total, labels, 1)
      np.add.at(self.class_top1, labels, h1.astype(np.int64))
      np.add.at(self.confusion, (labels, topk[:, 0]), 1)
    self.top1 += float(h1.sum())
    self.top5 += float(h5.sum())

  def result(self) -> dict[str, float]:
    n = max(self.count, 1.0)
    out = {"top1": self.top1 / n, "top5": self.top5 / n, "loss": self.nll / n,
           "num_examples": self.count}
    if self.skipped:
      out["num_skipped"] = self.skipped
    return out


def per_class_rows(tally: Tally, class_names: Sequence[str]) -> list[dict[str, Any]]:
  rows = []
  for i in range(tally.num_classes):
    total = int(tally.class_total[i])
    rows.append({"index": i, "class": class_names[i] if i < len(class_names) else str(i),
                 "examples": total, "top1": (tally.class_top1[i] / total) if total else float("nan")})
  return rows


def confused_pairs(confusion: np.ndarray, class_names: Sequence[str], top: int) -> list[dict[str, Any]]:
  """The `top` largest off-diagonal (true → predicted) counts, largest first."""
  off = np.array(confusion, np.int64, copy=True)
  np.fill_diagonal(off, 0)
  flat = np.argsort(-off, axis=None, kind="stable")[:top]
  out = []
  for idx in flat:
    t, p = np.unravel_index(idx, off.shape)
    if off[t, p] == 0:
      break
    total = int(confusion[t].sum())
    out.append({"true": class_names[t], "predicted": class_names[p], "count": int(off[t, p]),
                "fraction_of_true": off[t, p] / total if total else 0.0})
  return out


# ----------------------------------------------------------------------------- evaluation sets


def _pad_and_batch(ds, shard_size: int, n_batches: int, local_batch: int):
  """Pads a finite dataset with masked blanks to n_batches·local_batch elements and batches it."""
  tf = _tf()
  pad = n_batches * local_batch - shard_size
  if pad:
    blank = {k: tf.zeros(s.shape, s.dtype) for k, s in ds.element_spec.items()}
    if "real" in blank:
      blank["real"] = -tf.ones(ds.element_spec["real"].shape, tf.int32)
    ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(pad))
  options = tf.data.Options()
  options.deterministic = True
  return ds.batch(local_batch, drop_remainder=True).prefetch(2).with_options(options)


def _shard_bounds(n: int, index: int, count: int) -> tuple[int, int]:
  """Contiguous even shards: the first n % count shards get one extra example."""
  sizes = [n // count + (1 if i < n % count else 0) for i in range(count)]
  return sum(sizes[:index]), sum(sizes[:index + 1])


def _file_set_batches(paths: Sequence[str], labels: Sequence[int], real: np.ndarray | None,
                      preprocess, global_batch: int, process_index: int, process_count: int):
  """Eval batches {'image', 'label', 'mask'[, 'real']} from a list of image files."""
  from alexnet_jax.data import augment
  tf = _tf()
  local = global_batch // process_count
  n_batches = max(1, math.ceil(max(_shard_bounds(len(paths), i, process_count)[1]
                                   - _shard_bounds(len(paths), i, process_count)[0]
                                   for i in range(process_count)) / local))
  lo, hi = _shard_bounds(len(paths), process_index, process_count)
  cols = {"path": np.asarray(paths[lo:hi], dtype=str), "label": np.asarray(labels[lo:hi], np.int32)}
  if real is not None:
    cols["real"] = np.asarray(real[lo:hi], np.int32)

  def prep(ex):
    out = {"image": tf.cast(preprocess(augment.decode_rgb(tf.io.read_file(ex["path"]))), tf.float32),
           "label": ex["label"], "mask": tf.constant(1.0, tf.float32)}
    if "real" in ex:
      out["real"] = ex["real"]
    return out

  ds = tf.data.Dataset.from_tensor_slices(cols).map(prep, num_parallel_calls=tf.data.AUTOTUNE)
  return _pad_and_batch(ds, hi - lo, n_batches, local)


def load_real_labels(path: str, num_classes: int) -> list[list[int]]:
  """Reads real.json (one label list per validation image, in file order) and checks it."""
  if not os.path.isfile(path):
    raise _data_error(f"config.eval.real_json={path!r} does not exist. Download real.json from "
                      f"{REAL_URL} and point --config.eval.real_json at it.")
  with open(path) as f:
    try:
      labels = json.load(f)
    except json.JSONDecodeError as e:
      raise _data_error(f"{path} is not valid JSON ({e}); download real.json again from {REAL_URL}.") from None
  if not isinstance(labels, list) or not all(
      isinstance(ls, list) and all(isinstance(x, int) and 0 <= x < num_classes for x in ls) for ls in labels):
    raise _data_error(f"{path} must be a JSON list of label lists with class indices in 0..{num_classes - 1} "
                      f"(the format of real.json from {REAL_URL}).")
  return labels


def real_matrix(label_lists: Sequence[Sequence[int]]) -> np.ndarray:
  """Label lists → int32 [N, K] padded with -1 (K ≥ 1)."""
  k = max([1] + [len(ls) for ls in label_lists])
  out = -np.ones((len(label_lists), k), np.int32)
  for i, ls in enumerate(label_lists):
    out[i, :len(ls)] = ls
  return out


_VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})")


def validation_index(file_name: str) -> int:
  """0-based position of an ILSVRC-2012 validation file (ILSVRC2012_val_00000001.JPEG → 0)."""
  m = _VAL_NAME.search(os.path.basename(file_name))
  if not m or int(m.group(1)) < 1:
    raise _data_error(f"ReaL labels are matched by validation file name, but {file_name!r} is not named "
                      "ILSVRC2012_val_<8 digits>.JPEG. Keep the original file names of the validation images.")
  return int(m.group(1)) - 1


@dataclasses.dataclass
class EvalSet:
  """One evaluation set, ready to iterate: `batches(preprocess, global_batch)` → host batches."""
  name: str
  batches: Callable[[Any, int], Iterator[dict[str, np.ndarray]]]
  class_names: tuple[str, ...]
  multi_label: bool = False
  notes: dict[str, Any] = dataclasses.field(default_factory=dict)


def _is_folder(config) -> bool:
  return os.path.isdir(str(config.dataset))


def _validation_set(config, info, pi: int, pc: int) -> EvalSet:
  def batches(preprocess, global_batch):
    return _data().eval_batches(config, split=config.eval_split, preprocess_fn=preprocess,
                                batch_size=global_batch, process_index=pi, process_count=pc)
  return EvalSet("validation", batches, info.class_names, notes={"split": config.eval_split})


def minival_split(config, num_train: int) -> tuple[str, bool]:
  """(TFDS split string of the last N train examples, whether the train split includes them)."""
  n = int(config.eval.minival_size)
  base, _, rest = str(config.train_split).partition("[")
  if n <= 0:
    raise ConfigError(f"config.eval.minival_size={n} must be positive.")
  if _is_folder(config):
    raise _data_error(
        "minival slices the train split, which needs a TFDS dataset; config.dataset is an image folder. "
        "Move a held-out part of train into its own split folder (e.g. <root>/minival/<class>/...) and "
        "evaluate it as the 'validation' set with --config.eval_split=minival.")
  if n >= num_train and not rest:
    raise _data_error(f"config.eval.minival_size={n} is not smaller than the train split ({num_train} "
                      "examples); lower it (e.g. --config.eval.minival_size=1000).")
  return f"{base}[-{n}:]", not rest


def _minival_set(config, info, pi: int, pc: int) -> EvalSet:
  split, overlaps = minival_split(config, info.num_train)

  def batches(preprocess, global_batch):
    return _data().eval_batches(config, split=split, preprocess_fn=preprocess,
                                batch_size=global_batch, process_index=pi, process_count=pc)
  return EvalSet("minival", batches, info.class_names,
                 notes={"split": split, "minival_in_train": overlaps})


def _tfds_builder_if_prepared(name: str, config):
  import tensorflow_datasets as tfds
  try:
    builder = tfds.builder(name, data_dir=config.data_dir or None)
  except Exception:  # unknown config/version in this TFDS release
    return None
  return builder if builder.is_prepared() else None


def _v2_set(config, info, pi: int, pc: int) -> EvalSet:
  v2_dir = str(config.eval.v2_dir)
  if v2_dir:
    if not os.path.isdir(v2_dir):
      raise _data_error(f"config.eval.v2_dir={v2_dir!r} is not a folder. Download {V2_URL}, extract it and "
                        "point --config.eval.v2_dir at the folder holding the 0..999 class folders.")
    paths, labels = [], []
    for name in sorted(os.listdir(v2_dir)):
      sub = os.path.join(v2_dir, name)
      if not os.path.isdir(sub):
        continue
      if not name.isdigit() or int(name) >= info.num_classes:
        raise _data_error(f"ImageNet-V2 folder {sub!r}: class folders must be class indices "
                          f"0..{info.num_classes - 1}, got {name!r}.")
      for f in sorted(os.listdir(sub)):
        paths.append(os.path.join(sub, f))
        labels.append(int(name))
    if not paths:
      raise _data_error(f"config.eval.v2_dir={v2_dir!r} holds no images in <class index>/ folders.")

    def batches(preprocess, global_batch):
      return _file_set_batches(paths, labels, None, preprocess, global_batch, pi, pc).as_numpy_iterator()
    return EvalSet("v2", batches, info.class_names, notes={"source": v2_dir, "images": len(paths)})
  builder = _tfds_builder_if_prepared("imagenet_v2", config)
  if builder is None:
    raise _data_error(
        "The 'v2' evaluation set (ImageNet-V2) is not available. Download "
        f"{V2_URL}, extract it, and pass --config.eval.v2_dir=<folder with the 0..999 class folders>; "
        "or prepare the TFDS dataset 'imagenet_v2' in config.data_dir (e.g. `tfds build imagenet_v2`).")
  _check_imagenet_classes(info, "v2")
  v2_config = _variant(config, dataset="imagenet_v2", train_split="test", eval_split="test")

  def batches(preprocess, global_batch):
    return _data().eval_batches(v2_config, split="test", preprocess_fn=preprocess,
                                batch_size=global_batch, process_index=pi, process_count=pc)
  return EvalSet("v2", batches, info.class_names, notes={"source": "tfds:imagenet_v2"})


def _check_imagenet_classes(info, set_name: str) -> None:
  if info.num_classes != 1000:
    raise _data_error(f"The '{set_name}' set uses the 1000 ILSVRC-2012 classes, but this model has "
                      f"{info.num_classes} classes ({info.name}). Evaluate it on 'validation' instead.")


def _variant(config, **fields):
  c = config.copy_and_resolve_references()
  with c.unlocked():
    for k, v in fields.items():
      c[k] = v
  return c


def _real_set(config, info, pi: int, pc: int) -> EvalSet:
  tf = _tf()
  real_json = str(config.eval.real_json)
  if real_json:
    table = real_matrix(load_real_labels(real_json, info.num_classes))
    if _is_folder(config):
      from alexnet_jax.data import folder
      try:
        split = folder.load_split(str(config.dataset), config.eval_split, info.class_names)
      except folder.FolderError as e:
        raise _data_error(str(e)) from None
      idx = [validation_index(p) for p in split.paths]
      if max(idx) >= len(table):
        raise _data_error(f"{real_json} has {len(table)} label lists but the validation folder has image "
                          f"number {max(idx) + 1}; use the real.json that matches ILSVRC-2012 validation.")
      real = table[idx]

      def batches(preprocess, global_batch):
        return _file_set_batches(list(split.paths), list(split.labels), real, preprocess, global_batch,
                                 pi, pc).as_numpy_iterator()
      return EvalSet("real", batches, info.class_names, multi_label=True, notes={"source": real_json})
    if str(config.dataset) != "imagenet2012":
      raise _data_error(f"ReaL labels from real.json need the ImageNet validation images: config.dataset "
                        f"must be 'imagenet2012' or a folder of ILSVRC2012_val_*.JPEG files, not {config.dataset!r}.")
    builder = _tfds_builder_if_prepared("imagenet2012", config)
    if builder is None:
      raise _data_error("ReaL needs the prepared TFDS 'imagenet2012' validation split; run training or "
                        "`--mode=eval` on imagenet2012 once to prepare it (see its error for the tars).")
    return _tfds_real_set(config, info, builder, "validation", pi, pc, table=table, note=real_json)
  builder = _tfds_builder_if_prepared("imagenet2012_real", config)
  if builder is None:
    raise _data_error(
        "The 'real' evaluation set (ImageNet-ReaL) is not available. Download real.json from "
        f"{REAL_URL} and pass --config.eval.real_json=<path to real.json> (the validation images come from "
        "config.dataset), or prepare the TFDS dataset 'imagenet2012_real' in config.data_dir.")
  _check_imagenet_classes(info, "real")
  return _tfds_real_set(config, info, builder, "validation", pi, pc, table=None, note="tfds:imagenet2012_real")


def _tfds_real_set(config, info, builder, split: str, pi: int, pc: int, table, note: str) -> EvalSet:
  """ReaL from a TFDS builder: labels looked up by file name in `table`, or its 'real_label' feature."""
  import tensorflow_datasets as tfds
  from alexnet_jax.data import augment
  tf = _tf()
  n = int(builder.info.splits[split].num_examples)
  shard = split if pc == 1 else tfds.even_splits(split, n=pc)[pi]
  shard_n = int(builder.info.splits[shard].num_examples)
  k = table.shape[1] if table is not None else 16
  lookup = tf.constant(table) if table is not None else None

  def to_real(ex):
    if lookup is not None:
      digits = tf.strings.regex_replace(ex["file_name"], r".*ILSVRC2012_val_(\d{8}).*", r"\1")
      return tf.gather(lookup, tf.strings.to_number(digits, tf.int32) - 1)
    labels = tf.cast(ex["real_label"][:k], tf.int32)
    return tf.pad(labels, [[0, k - tf.shape(labels)[0]]], constant_values=-1)

  def batches(preprocess, global_batch):
    local = global_batch // pc
    n_batches = max(1, math.ceil(math.ceil(n / pc) / local))
    ds = builder.as_dataset(split=shard, shuffle_files=False)
    label_key = "label" if "label" in builder.info.features else "original_label"
    ds = ds.map(lambda ex: {"image": tf.cast(preprocess(augment.ensure_rgb(ex["image"])), tf.float32),
                            "label": tf.cast(ex[label_key], tf.int32), "mask": tf.constant(1.0),
                            "real": tf.ensure_shape(to_real(ex), [k])},
                num_parallel_calls=tf.data.AUTOTUNE)
    return _pad_and_batch(ds, shard_n, n_batches, local).as_numpy_iterator()
  return EvalSet("real", batches, info.class_names, multi_label=True, notes={"source": note})


def make_set(name: str, config, info, process_index: int = 0, process_count: int = 1) -> EvalSet:
  """The evaluation set `name`; raises DataError naming what to download when it is missing."""
  check_sets([name])
  maker = {"validation": _validation_set, "minival": _minival_set, "real": _real_set, "v2": _v2_set}[name]
  return maker(config, info, process_index, process_count)


# ----------------------------------------------------------------------------- device side


def views_step(state, batch: dict, *, k: int) -> dict:
  """Softmax averaged over each image's views: top-k classes, their probabilities, the label's NLL.

  batch['image'] is [B, V, S, S, 3]; the V views are folded into the batch for one forward pass.
  """
  import jax
  import jax.numpy as jnp
  images = batch["image"]
  b, v = images.shape[:2]
  variables = {"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}
  logits = state.apply_fn(variables, images.reshape((b * v,) + images.shape[2:]), train=False)
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).reshape(b, v, -1).mean(axis=1)
  top_p, top_i = jax.lax.top_k(probs, k)
  label_p = jnp.take_along_axis(probs, batch["label"][:, None], axis=1)[:, 0]
  out = {"topk": top_i, "topk_prob": top_p, "nll": -jnp.log(jnp.maximum(label_p, 1e-30)),
         "label": batch["label"], "mask": batch["mask"]}
  if "real" in batch:
    out["real"] = batch["real"]
  return out


class Evaluator:
  """A restored model plus a jitted multi-view step; evaluates protocols × sets."""

  def __init__(self, trainer, state, k: int = 5):
    import jax
    from alexnet_jax import parallel
    self.trainer, self.state, self.config = trainer, state, trainer.config
    self.k = min(k, trainer.info.num_classes)
    self.multiple = jax.device_count()
    self._step = jax.jit(functools.partial(views_step, k=self.k),
                         in_shardings=(trainer.state_sharding, trainer.data_sharding),
                         out_shardings=trainer.repl)
    self._to_global = functools.partial(parallel.to_global, sharding=trainer.data_sharding)

  def predict_batch(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import jax
    return jax.device_get(self._step(self.state, self._to_global(batch)))

  def run(self, protocol: str, eval_set: EvalSet) -> tuple[dict[str, Any], Tally]:
    """Evaluates one protocol on one set; every image counted once (padding is masked)."""
    if _from_store(self.config, protocol, eval_set):  # views cut on the device from the prepared store
      return self._run_from_store(protocol, eval_set)
    preprocess = make_preprocess(protocol, self.config)
    global_batch = images_per_batch(self.config, protocol, self.multiple)
    tally = Tally(self.trainer.info.num_classes)
    for batch in eval_set.batches(preprocess, global_batch):
      out = self.predict_batch(batch)
      tally.add(out["topk"], out["nll"], out["label"], out["mask"], out.get("real"))
    result = {**tally.result(), "views": num_views(protocol, self.config.eval), **eval_set.notes}
    return result, tally


  def _run_from_store(self, protocol: str, eval_set: EvalSet) -> tuple[dict[str, Any], Tally]:
    """`center` / `10crop` on config.eval_split from uint8 store batches (alexnet_jax/data/store.py)."""
    import jax
    from alexnet_jax.data import device_augment, store
    cfg, trainer = self.config, self.trainer

    def step(state, batch):
      views = device_augment.eval_views(cfg.input, protocol, batch["image"])
      return views_step(state, {**batch, "image": views}, k=self.k)

    fn = jax.jit(step, in_shardings=(trainer.state_sharding, trainer.data_sharding), out_shardings=trainer.repl)
    tally = Tally(trainer.info.num_classes)
    for batch in store.eval_batches(cfg, split=cfg.eval_split, batch_size=images_per_batch(cfg, protocol, self.multiple),
                                    process_index=jax.process_index(), process_count=jax.process_count()):
      out = jax.device_get(fn(self.state, self._to_global(batch)))
      tally.add(out["topk"], out["nll"], out["label"], out["mask"])
    return {**tally.result(), "views": num_views(protocol, cfg.eval), **eval_set.notes}, tally


def _from_store(config, protocol: str, eval_set: EvalSet) -> bool:
  """Whether `protocol` on `eval_set` reads the prepared store (the others stream full-size images)."""
  from alexnet_jax.data import device_augment
  return (config.input.get("pipeline", "stream") == "store" and eval_set.name == "validation"
          and protocol in device_augment.store_protocols())


def run_all(evaluator: Evaluator, protocols: Sequence[str], sets: Sequence[str], *,
            process_index: int = 0, process_count: int = 1) -> tuple[dict, dict]:
  """results[protocol][set] and the tallies; a missing set fails before any compute."""
  config, info = evaluator.config, evaluator.trainer.info
  eval_sets = [make_set(s, config, info, process_index, process_count) for s in check_sets(sets)]
  results: dict[str, dict[str, Any]] = {}
  tallies: dict[tuple[str, str], Tally] = {}
  for protocol in check_protocols(protocols):
    for es in eval_sets:
      res, tally = evaluator.run(protocol, es)
      results.setdefault(protocol, {})[es.name] = res
      tallies[(protocol, es.name)] = tally
  return results, tallies


# ----------------------------------------------------------------------------- outputs


def display_names(class_names: Sequence[str]) -> tuple[str, ...]:
  """Class names for humans: a WordNet-id folder name (n01440764) becomes 'tench (n01440764)'."""
  from alexnet_jax.data import imagenet_classes
  classes = imagenet_classes.load()
  out = []
  for name in class_names:
    try:
      out.append(f"{classes.names[classes.index_of(name)]} ({name})")
    except KeyError:
      out.append(name)
  return tuple(out)


def write_tables(out_dir: str, protocol: str, set_name: str, tally: Tally, class_names: Sequence[str],
                 top: int) -> None:
  """per_class_<protocol>_<set>.csv and confusions_<protocol>_<set>.{md,json}."""
  os.makedirs(out_dir, exist_ok=True)
  stem = f"{protocol}_{set_name}"
  with open(os.path.join(out_dir, f"per_class_{stem}.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["index", "class", "examples", "top1"])
    w.writeheader()
    w.writerows(per_class_rows(tally, class_names))
  pairs = confused_pairs(tally.confusion, class_names, top)
  with open(os.path.join(out_dir, f"confusions_{stem}.json"), "w") as f:
    json.dump(pairs, f, indent=2)
  lines = [f"# Most-confused classes: {protocol}, {set_name}", "",
           "| true class | predicted as | count | share of true class |", "|---|---|---:|---:|"]
  lines += [f"| {p['true']} | {p['predicted']} | {p['count']} | {100 * p['fraction_of_true']:.1f}% |"
            for p in pairs]
  with open(os.path.join(out_dir, f"confusions_{stem}.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def _pct(x: float | None) -> str:
  return "—" if x is None else f"{x:.2f}"


def format_table(results: dict[str, dict[str, Any]]) -> str:
  """A console/markdown table: protocol, set, top-1/top-5 accuracy and error, examples."""
  lines = ["| protocol | set | views | top-1 acc | top-5 acc | top-1 err | top-5 err | examples |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
  for protocol, by_set in results.items():
    for set_name, r in by_set.items():
      lines.append(f"| {protocol} | {set_name} | {r['views']} | {100 * r['top1']:.2f} | {100 * r['top5']:.2f} "
                   f"| {100 * (1 - r['top1']):.2f} | {100 * (1 - r['top5']):.2f} | {int(r['num_examples'])} |")
  return "\n".join(lines)


def format_report(results: dict[str, dict[str, Any]], *, model: str, dataset: str, step: int,
                  config_name: str) -> str:
  """report.md: this run's numbers, the paper's numbers for the family, the human baseline."""
  lines = [f"# Evaluation report: {config_name}", "",
           f"Model `{model}`, dataset `{dataset}`, checkpoint step {step}. Errors and accuracies in %.", "",
           "## This run", "", format_table(results), ""]
  papers = PAPER_RESULTS.get(model, [])
  lines += ["## Reported in the papers (ILSVRC-2012, 1000 classes)", ""]
  if papers:
    lines += ["| model | protocol | set | top-1 err | top-5 err | source |", "|---|---|---|---:|---:|---|"]
    lines += [f"| {p['model']} | {p['protocol']} | {p['set']} | {_pct(p['top1_err'])} | {_pct(p['top5_err'])} "
              f"| {p['source']} |" for p in papers]
  else:
    lines.append(f"No paper numbers recorded for `{model}`.")
  lines += ["", f"Human top-5 error on ILSVRC-2012: {HUMAN_TOP5_ERROR}% (Russakovsky et al. 2015, one trained "
            "annotator on 1500 test images).", "",
            "Read the gap between protocols (center → 10crop → multiscale/144crop) as what test-time "
            "averaging buys, and the gap between sets (validation → real → v2) as what the labels and a "
            "fresh test set change; only rows with the same dataset, protocol and set compare with a paper. "
            "`multiscale` here averages crops, not VGG's dense evaluation."]
  if any(r.get("minival_in_train") for by_set in results.values() for r in by_set.values()):
    lines += ["", "Note: minival is the tail of the train split and this run trained on it (train_split had no "
              "slice); train with --config.train_split='train[:-N]' for a held-out minival."]
  if dataset not in ("imagenet2012",):
    lines += ["", f"Note: this run's dataset is `{dataset}`, not ILSVRC-2012, so its numbers do not compare "
              "directly with the papers'."]
  return "\n".join(lines) + "\n"


def write_outputs(workdir: str, step: int, results: dict, tallies: dict, class_names: Sequence[str],
                  config) -> str:
  """Writes eval/step_<N>.json, per-class CSVs, confusion tables and report.md; returns the folder."""
  out_dir = os.path.join(workdir, "eval")
  os.makedirs(out_dir, exist_ok=True)
  names = display_names(class_names)
  for (protocol, set_name), tally in tallies.items():
    if tally.class_total.sum():  # single-label sets only
      write_tables(out_dir, protocol, set_name, tally, names, int(config.eval.top_confusions))
  payload = {"step": step, "config_name": config.name, "model": config.model.name, "dataset": str(config.dataset),
             "results": results}
  path = os.path.join(out_dir, f"step_{step}.json")
  with open(path + ".tmp", "w") as f:
    json.dump(payload, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(format_report(results, model=config.model.name, dataset=str(config.dataset), step=step,
                          config_name=config.name))
  return out_dir


# ----------------------------------------------------------------------------- checkpoints


def open_checkpoints(workdir: str):
  """A read-only Orbax manager over <workdir>/checkpoints with the item handlers registered.

  `checkpoint.manager` registers its handlers only on the first save, so in a fresh
  process (eval, predict) its `item_metadata` cannot read the items; naming the handlers
  here makes restore (and its shape check) work without a save.
  """
  import orbax.checkpoint as ocp
  from alexnet_jax import checkpoint
  options = ocp.CheckpointManagerOptions(create=False, enable_async_checkpointing=False, read_only=True)
  return ocp.CheckpointManager(checkpoint.checkpoint_dir(workdir), options=options,
                               item_handlers={"state": ocp.StandardCheckpointHandler(),
                                              "meta": ocp.JsonCheckpointHandler()})


def restore_for_eval(config, workdir: str, step: int | None = None, info=None):
  """(Trainer, restored TrainState, step) for the latest or given checkpoint of `workdir`."""
  from alexnet_jax import checkpoint
  from alexnet_jax import train
  ckpt_dir = checkpoint.checkpoint_dir(workdir)
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"No checkpoints in {workdir!r} (expected {ckpt_dir}). Train first, or point "
                            "--workdir at a trained run.")
  mgr = open_checkpoints(workdir)
  try:
    steps = mgr.all_steps()
    if not steps:
      raise FileNotFoundError(f"No complete checkpoint in {ckpt_dir}.")
    step = steps[-1] if step is None else int(step)
    if step not in steps:
      raise FileNotFoundError(f"No checkpoint for step {step} in {workdir!r}; available: {sorted(steps)}.")
    trainer = train.Trainer(config, info=info)
    target = train.checkpoint_tree(trainer, trainer.init_state())
    restored, _ = checkpoint.restore(mgr, step, target)
  finally:
    mgr.close()
  return trainer, restored.state, step


def evaluate_checkpoint(config, workdir: str, step: int | None = None, *,
                        protocols: Sequence[str] | None = None, sets: Sequence[str] | None = None,
                        write: bool = True) -> dict[str, Any]:
  """The eval command: restore, run protocols × sets, print the table, write eval/ outputs."""
  import jax
  protocols = check_protocols(protocols or config.eval.protocols)
  sets = check_sets(sets or config.eval.sets)
  trainer, state, step = restore_for_eval(config, workdir, step)
  evaluator = Evaluator(trainer, state)
  results, tallies = run_all(evaluator, protocols, sets, process_index=jax.process_index(),
                             process_count=jax.process_count())
  print(f"Checkpoint step {step} of {workdir}:\n{format_table(results)}")
  out = {"step": step, "results": results}
  if write and jax.process_index() == 0:
    out_dir = write_outputs(workdir, step, results, tallies, trainer.info.class_names, config)
    print(f"Wrote {out_dir}/step_{step}.json, report.md, per-class and confusion tables.")
  return out


def main(argv: Sequence[str]) -> None:
  """`python -m alexnet_jax.evaluate --config=... --workdir=... [--step] [--protocols] [--sets]`."""
  del argv
  from absl import flags
  f = flags.FLAGS
  evaluate_checkpoint(f.config, f.workdir or os.path.join("runs", f.config.name), f.step,
                      protocols=_split_flag(f.protocols), sets=_split_flag(f.sets))


def _split_flag(text: str | None) -> tuple[str, ...] | None:
  items = tuple(s.strip() for s in (text or "").split(",") if s.strip())
  return items or None


if __name__ == "__main__":
  from absl import app, flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "Config file (path.py:args).", lock_config=True)
  flags.DEFINE_string("workdir", None, "Run folder with checkpoints/.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_string("protocols", None, "Comma-separated: " + ",".join(PROTOCOLS))
  flags.DEFINE_string("sets", None, "Comma-separated: " + ",".join(SETS))
  flags.mark_flags_as_required(["config"])
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  app.run(main)
