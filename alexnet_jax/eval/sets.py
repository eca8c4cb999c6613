"""Evaluation sets: validation, minival, ImageNet-ReaL and ImageNet-V2, as padded host batches.

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

Every image counts exactly once: each process reads its shard and pads it with masked
blanks to the same number of batches (the input pipeline's shard and padding rules).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from alexnet_jax.errors import ConfigError
from alexnet_jax.eval import views

SETS = ("validation", "minival", "real", "v2")
REAL_URL = "https://github.com/google-research/reassessed-imagenet (file real.json)"
V2_URL = ("https://huggingface.co/datasets/vaishaal/ImageNetV2 "
          "(imagenetv2-matched-frequency.tar.gz)")
_REAL_FILL = {"real": -1}  # a padded example has no ReaL label


def check_sets(sets: Iterable[str]) -> tuple[str, ...]:
  return views.check_names(sets, SETS, "evaluation set(s)", "config.eval.sets or --sets")


def _file_set_batches(paths: Sequence[str], labels: Sequence[int], real: np.ndarray | None,
                      preprocess, global_batch: int, process_index: int, process_count: int):
  """Eval batches {'image', 'label', 'mask'[, 'real']} from a list of image files."""
  import tensorflow as tf
  from alexnet_jax.data import augment
  from alexnet_jax.data import input_pipeline
  local = global_batch // process_count
  n_batches = input_pipeline.num_padded_batches(len(paths), local, process_count)
  lo, hi = input_pipeline.shard_bounds(len(paths), process_index, process_count)
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
  return input_pipeline.pad_and_batch(ds, hi - lo, n_batches, local, fill=_REAL_FILL)


def load_real_labels(path: str, num_classes: int) -> list[list[int]]:
  """Reads real.json (one label list per validation image, in file order) and checks it."""
  from alexnet_jax.data.input_pipeline import DataError
  if not os.path.isfile(path):
    raise DataError(f"config.eval.real_json={path!r} does not exist. Download real.json from "
                    f"{REAL_URL} and point --config.eval.real_json at it.")
  with open(path) as f:
    try:
      labels = json.load(f)
    except json.JSONDecodeError as e:
      raise DataError(f"{path} is not valid JSON ({e}); download real.json again from {REAL_URL}.") from None
  if not isinstance(labels, list) or not all(
      isinstance(ls, list) and all(isinstance(x, int) and 0 <= x < num_classes for x in ls) for ls in labels):
    raise DataError(f"{path} must be a JSON list of label lists with class indices in 0..{num_classes - 1} "
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
  from alexnet_jax.data.input_pipeline import DataError
  m = _VAL_NAME.search(os.path.basename(file_name))
  if not m or int(m.group(1)) < 1:
    raise DataError(f"ReaL labels are matched by validation file name, but {file_name!r} is not named "
                    "ILSVRC2012_val_<8 digits>.JPEG. Keep the original file names of the validation images.")
  return int(m.group(1)) - 1


@dataclasses.dataclass
class EvalSet:
  """One evaluation set, ready to iterate: `batches(preprocess, global_batch)` → host batches."""
  name: str
  batches: Callable[[Any, int], Iterator[dict[str, np.ndarray]]]
  class_names: tuple[str, ...]
  multi_label: bool = False
  size: int = 0  # images in the set (all processes), for progress lines; 0 when unknown
  notes: dict[str, Any] = dataclasses.field(default_factory=dict)


def _is_folder(config) -> bool:
  return os.path.isdir(str(config.dataset))


def _validation_set(config, info, pi: int, pc: int) -> EvalSet:
  def batches(preprocess, global_batch):
    from alexnet_jax.data import input_pipeline  # TensorFlow only when the set is streamed
    return input_pipeline.eval_batches(config, split=config.eval_split, preprocess_fn=preprocess,
                                batch_size=global_batch, process_index=pi, process_count=pc)
  return EvalSet("validation", batches, info.class_names, size=info.num_eval, notes={"split": config.eval_split})


def minival_split(config, num_train: int) -> tuple[str, bool]:
  """(TFDS split string of the last N train examples, whether the train split includes them)."""
  from alexnet_jax.data.input_pipeline import DataError
  n = int(config.eval.minival_size)
  base, _, rest = str(config.train_split).partition("[")
  if n <= 0:
    raise ConfigError(f"config.eval.minival_size={n} must be positive.")
  if _is_folder(config):
    raise DataError(
        "minival slices the train split, which needs a TFDS dataset; config.dataset is an image folder. "
        "Move a held-out part of train into its own split folder (e.g. <root>/minival/<class>/...) and "
        "evaluate it as the 'validation' set with --config.eval_split=minival.")
  if n >= num_train and not rest:
    raise DataError(f"config.eval.minival_size={n} is not smaller than the train split ({num_train} "
                    "examples); lower it (e.g. --config.eval.minival_size=1000).")
  return f"{base}[-{n}:]", not rest


def _minival_set(config, info, pi: int, pc: int) -> EvalSet:
  from alexnet_jax.data import input_pipeline
  split, overlaps = minival_split(config, info.num_train)

  def batches(preprocess, global_batch):
    return input_pipeline.eval_batches(config, split=split, preprocess_fn=preprocess,
                                batch_size=global_batch, process_index=pi, process_count=pc)
  return EvalSet("minival", batches, info.class_names, size=int(config.eval.minival_size),
                 notes={"split": split, "minival_in_train": overlaps})


def _tfds_builder_if_prepared(name: str, config):
  import tensorflow_datasets as tfds
  try:
    builder = tfds.builder(name, data_dir=config.data_dir or None)
  except Exception:  # unknown config/version in this TFDS release
    return None
  return builder if builder.is_prepared() else None


def _v2_set(config, info, pi: int, pc: int) -> EvalSet:
  from alexnet_jax.data import input_pipeline
  from alexnet_jax.data.input_pipeline import DataError
  v2_dir = str(config.eval.v2_dir)
  if v2_dir:
    if not os.path.isdir(v2_dir):
      raise DataError(f"config.eval.v2_dir={v2_dir!r} is not a folder. Download {V2_URL}, extract it and "
                      "point --config.eval.v2_dir at the folder holding the 0..999 class folders.")
    paths, labels = [], []
    for name in sorted(os.listdir(v2_dir)):
      sub = os.path.join(v2_dir, name)
      if not os.path.isdir(sub):
        continue
      if not name.isdigit() or int(name) >= info.num_classes:
        raise DataError(f"ImageNet-V2 folder {sub!r}: class folders must be class indices "
                        f"0..{info.num_classes - 1}, got {name!r}.")
      for f in sorted(os.listdir(sub)):
        paths.append(os.path.join(sub, f))
        labels.append(int(name))
    if not paths:
      raise DataError(f"config.eval.v2_dir={v2_dir!r} holds no images in <class index>/ folders.")

    def batches(preprocess, global_batch):
      return _file_set_batches(paths, labels, None, preprocess, global_batch, pi, pc).as_numpy_iterator()
    return EvalSet("v2", batches, info.class_names, size=len(paths), notes={"source": v2_dir, "images": len(paths)})
  builder = _tfds_builder_if_prepared("imagenet_v2", config)
  if builder is None:
    raise DataError(
        "The 'v2' evaluation set (ImageNet-V2) is not available. Download "
        f"{V2_URL}, extract it, and pass --config.eval.v2_dir=<folder with the 0..999 class folders>; "
        "or prepare the TFDS dataset 'imagenet_v2' in config.data_dir (e.g. `tfds build imagenet_v2`).")
  _check_imagenet_classes(info, "v2")
  v2_config = _variant(config, dataset="imagenet_v2", train_split="test", eval_split="test")

  def batches(preprocess, global_batch):
    return input_pipeline.eval_batches(v2_config, split="test", preprocess_fn=preprocess,
                                batch_size=global_batch, process_index=pi, process_count=pc)
  return EvalSet("v2", batches, info.class_names, size=int(builder.info.splits["test"].num_examples),
                 notes={"source": "tfds:imagenet_v2"})


def _check_imagenet_classes(info, set_name: str) -> None:
  from alexnet_jax.data.input_pipeline import DataError
  if info.num_classes != 1000:
    raise DataError(f"The '{set_name}' set uses the 1000 ILSVRC-2012 classes, but this model has "
                    f"{info.num_classes} classes ({info.name}). Evaluate it on 'validation' instead.")


def _variant(config, **fields):
  c = config.copy_and_resolve_references()
  with c.unlocked():
    for k, v in fields.items():
      c[k] = v
  return c


def _real_set(config, info, pi: int, pc: int) -> EvalSet:
  from alexnet_jax.data import folder
  from alexnet_jax.data.input_pipeline import DataError
  real_json = str(config.eval.real_json)
  if real_json:
    table = real_matrix(load_real_labels(real_json, info.num_classes))
    if _is_folder(config):
      try:
        split = folder.load_split(str(config.dataset), config.eval_split, info.class_names)
      except folder.FolderError as e:
        raise DataError(str(e)) from None
      idx = [validation_index(p) for p in split.paths]
      if max(idx) >= len(table):
        raise DataError(f"{real_json} has {len(table)} label lists but the validation folder has image "
                        f"number {max(idx) + 1}; use the real.json that matches ILSVRC-2012 validation.")
      real = table[idx]

      def batches(preprocess, global_batch):
        return _file_set_batches(list(split.paths), list(split.labels), real, preprocess, global_batch,
                                 pi, pc).as_numpy_iterator()
      return EvalSet("real", batches, info.class_names, multi_label=True, size=len(idx),
                     notes={"source": real_json})
    if str(config.dataset) != "imagenet2012":
      raise DataError(f"ReaL labels from real.json need the ImageNet validation images: config.dataset "
                      f"must be 'imagenet2012' or a folder of ILSVRC2012_val_*.JPEG files, not {config.dataset!r}.")
    builder = _tfds_builder_if_prepared("imagenet2012", config)
    if builder is None:
      raise DataError("ReaL needs the prepared TFDS 'imagenet2012' validation split; run training or "
                      "`--mode=eval` on imagenet2012 once to prepare it (see its error for the tars).")
    return _tfds_real_set(config, info, builder, "validation", pi, pc, table=table, note=real_json)
  builder = _tfds_builder_if_prepared("imagenet2012_real", config)
  if builder is None:
    raise DataError(
        "The 'real' evaluation set (ImageNet-ReaL) is not available. Download real.json from "
        f"{REAL_URL} and pass --config.eval.real_json=<path to real.json> (the validation images come from "
        "config.dataset), or prepare the TFDS dataset 'imagenet2012_real' in config.data_dir.")
  _check_imagenet_classes(info, "real")
  return _tfds_real_set(config, info, builder, "validation", pi, pc, table=None, note="tfds:imagenet2012_real")


def _tfds_real_set(config, info, builder, split: str, pi: int, pc: int, table, note: str) -> EvalSet:
  """ReaL from a TFDS builder: labels looked up by file name in `table`, or its 'real_label' feature."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
  from alexnet_jax.data import augment
  from alexnet_jax.data import input_pipeline
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
    n_batches = input_pipeline.num_padded_batches(n, local, pc)
    ds = builder.as_dataset(split=shard, shuffle_files=False)
    label_key = "label" if "label" in builder.info.features else "original_label"
    ds = ds.map(lambda ex: {"image": tf.cast(preprocess(augment.ensure_rgb(ex["image"])), tf.float32),
                            "label": tf.cast(ex[label_key], tf.int32), "mask": tf.constant(1.0),
                            "real": tf.ensure_shape(to_real(ex), [k])},
                num_parallel_calls=tf.data.AUTOTUNE)
    return input_pipeline.pad_and_batch(ds, shard_n, n_batches, local, fill=_REAL_FILL).as_numpy_iterator()
  return EvalSet("real", batches, info.class_names, multi_label=True, size=n, notes={"source": note})


def make_set(name: str, config, info, process_index: int = 0, process_count: int = 1) -> EvalSet:
  """The evaluation set `name`; raises DataError naming what to download when it is missing."""
  check_sets([name])
  maker = {"validation": _validation_set, "minival": _minival_set, "real": _real_set, "v2": _v2_set}[name]
  return maker(config, info, process_index, process_count)
