"""Train and eval batches from TFDS datasets, the embedded dataset, or image folders.

Determinism contract (what makes bit-exact resume after a crash possible): the train
batch with global index k is a pure function of (config, k).
  * The epoch is e = k // steps_per_epoch, with steps_per_epoch = num_train // batch_size
    (global, so every process agrees); the last partial batch of an epoch is dropped.
  * The order of epoch e is a function of (seed, e, process): a permutation of the file
    list for folders; a seeded file shuffle plus seeded shuffle buffer for TFDS.
  * Resuming at k skips the first (k mod steps_per_epoch)·B records of the epoch *before*
    decoding (cheap), and every random augmentation draws from a stateless seed derived
    from (seed, e, process, position in the epoch).
  * tf.data runs with deterministic=True, so parallel maps do not reorder examples.

Multi-host: each process reads a distinct shard (tfds.even_splits for TFDS, a strided
slice of the epoch permutation for folders) and yields host-local batches of
batch_size // process_count.

Eval sees every example exactly once over all processes; each process pads its shard
with fully masked examples up to the same number of batches, so collective ops in the
eval step never deadlock on a host that ran out of data.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Callable, Iterator, Protocol

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from alexnet_jax.data import augment, embedded, folder, imagenet
from alexnet_jax.data.store_layout import DatasetInfo
from alexnet_jax.errors import UserError

Batch = dict[str, np.ndarray]
PreprocessFn = Callable[[tf.Tensor], tf.Tensor]


class DataError(UserError):
  """A problem the user must fix in their data or config (the message says what and how)."""


# ----------------------------------------------------------------------------- reusable ops


def normalize(image: tf.Tensor, config) -> tf.Tensor:
  """The normalisation every model input gets: (x − mean_rgb) / std_rgb on the 0..255 scale."""
  return augment.normalize(image, config.input.mean_rgb, config.input.std_rgb)


def default_eval_preprocess(config) -> PreprocessFn:
  """uint8 [H, W, 3] → float32 [S, S, 3]: resize the short side, centre crop, normalise."""
  return augment.eval_preprocess(config.input)


# ----------------------------------------------------------------------------- sources


class _Source(Protocol):
  info: DatasetInfo

  def split_size(self, split: str, process_index: int, process_count: int) -> int:
    """Examples of `split` in this process's shard."""

  def train_records(self, epoch: int, skip: int, take: int, seed: int, process_index: int,
                    process_count: int, shuffle_buffer: int) -> tf.data.Dataset:
    """Elements {'bytes', 'label'} of the shard's epoch order, positions [skip, take)."""

  def eval_images(self, split: str, process_index: int, process_count: int) -> tf.data.Dataset:
    """Elements {'image': uint8 [H, W, 3], 'label'} of the shard, in a fixed order."""


def _epoch_seed(seed: int, epoch: int, process_index: int) -> np.ndarray:
  """Two 31-bit integers derived from (seed, epoch, process): order and augmentation seeds."""
  return np.random.SeedSequence([seed, epoch, process_index, 0x5EED]).generate_state(
      2, np.uint32).astype(np.int64) & 0x7FFFFFFF


def shard_bounds(n: int, index: int, count: int) -> tuple[int, int]:
  """[lo, hi) of shard `index` of `count` over n examples, sized as tfds.even_splits makes
  them: contiguous, the first n % count shards one example larger."""
  size, extra = divmod(n, count)
  lo = index * size + min(index, extra)
  return lo, lo + size + (1 if index < extra else 0)


class _TfdsSource:
  """Any TFDS builder with 'image' and 'label' features (including the embedded one)."""

  def __init__(self, builder: tfds.core.DatasetBuilder, config):
    self.builder = builder
    self.train_split = config.train_split
    features = builder.info.features
    if "image" not in features or "label" not in features:
      raise DataError(
          f"TFDS dataset {builder.name!r} has features {list(features)}; this pipeline needs "
          "'image' and 'label'. Choose an image-classification dataset.")
    available = list(builder.info.splits)
    # A dataset without a 'validation' split (e.g. cifar10) is evaluated on its 'test' split.
    self.aliases = {}
    if config.eval_split == "validation" and "validation" not in available and "test" in available:
      logging.info("TFDS dataset %s has no 'validation' split; evaluating on 'test' instead.", builder.name)
      self.aliases["validation"] = "test"
    for key in ("train_split", "eval_split"):
      split = self.aliases.get(config[key], config[key])
      try:
        builder.info.splits[split]
      except (KeyError, ValueError) as e:
        raise DataError(f"config.{key}={split!r} is not a split of {builder.name!r} "
                        f"(available: {available}). {e}") from None
    self.info = DatasetInfo(
        name=builder.name if config.dataset != "embedded" else "embedded",
        num_classes=int(features["label"].num_classes),
        num_train=int(builder.info.splits[config.train_split].num_examples),
        num_eval=int(builder.info.splits[self.aliases.get(config.eval_split, config.eval_split)].num_examples),
        class_names=tuple(features["label"].names))

  def _shard(self, split: str, process_index: int, process_count: int):
    split = self.aliases.get(split, split)
    return split if process_count == 1 else tfds.even_splits(split, n=process_count)[process_index]

  def split_size(self, split: str, process_index: int, process_count: int) -> int:
    try:
      shard = self.builder.info.splits[self._shard(split, process_index, process_count)]
    except (KeyError, ValueError) as e:
      raise DataError(f"split={split!r} is not a split of {self.builder.name!r} "
                      f"(available: {list(self.builder.info.splits)}). {e}") from None
    return int(shard.num_examples)

  def train_records(self, epoch, skip, take, seed, process_index, process_count, shuffle_buffer):
    order_seed = int(_epoch_seed(seed, epoch, process_index)[0])
    read_config = tfds.ReadConfig(shuffle_seed=order_seed, try_autocache=False)
    ds = self.builder.as_dataset(
        split=self._shard(self.train_split, process_index, process_count), shuffle_files=True,
        read_config=read_config, decoders={"image": tfds.decode.SkipDecoding()})
    ds = ds.map(lambda ex: {"bytes": ex["image"], "label": tf.cast(ex["label"], tf.int32)})
    ds = ds.shuffle(max(1, shuffle_buffer), seed=order_seed, reshuffle_each_iteration=False)
    return ds.take(take).skip(skip)

  def eval_images(self, split, process_index, process_count):
    ds = self.builder.as_dataset(split=self._shard(split, process_index, process_count),
                                 shuffle_files=False, read_config=tfds.ReadConfig(try_autocache=False))
    return ds.map(lambda ex: {"image": augment.ensure_rgb(ex["image"]),
                              "label": tf.cast(ex["label"], tf.int32)})


class _FolderSource:
  """<root>/<split>/<class>/<image>, screened for unreadable files."""

  def __init__(self, root: str, config):
    self.root = root
    self.train_split = config.train_split
    skip = bool(config.input.get("skip_corrupt", True))
    try:
      train_name = folder.resolve_split(root, config.train_split)
      classes = folder.class_names(root, train_name)
      self.splits = {config.train_split: folder.load_split(root, config.train_split, classes, skip)}
      if config.eval_split not in self.splits:
        self.splits[config.eval_split] = folder.load_split(root, config.eval_split, classes, skip)
    except folder.FolderError as e:
      raise DataError(str(e)) from None
    self.info = DatasetInfo(
        name=os.path.basename(os.path.normpath(root)), num_classes=len(classes),
        num_train=len(self.splits[config.train_split].paths),
        num_eval=len(self.splits[config.eval_split].paths), class_names=classes)

  def _split(self, split: str) -> folder.Split:
    if split not in self.splits:
      try:
        self.splits[split] = folder.load_split(self.root, split, self.info.class_names)
      except folder.FolderError as e:
        raise DataError(str(e)) from None
    return self.splits[split]

  def split_size(self, split, process_index, process_count):
    lo, hi = shard_bounds(len(self._split(split).paths), process_index, process_count)
    return hi - lo

  def train_records(self, epoch, skip, take, seed, process_index, process_count, shuffle_buffer):
    del shuffle_buffer  # a full permutation is cheap for a file list
    split = self.splits[self.train_split]
    order_seed = _epoch_seed(seed, epoch, 0)  # one global permutation; processes take strides
    perm = np.random.default_rng(order_seed).permutation(len(split.paths))
    idx = perm[process_index::process_count][:take][skip:]
    paths = np.asarray(split.paths, dtype=object)[idx].astype(str)
    labels = np.asarray(split.labels, dtype=np.int32)[idx]
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    return ds.map(lambda p, y: {"bytes": tf.io.read_file(p), "label": y},
                  num_parallel_calls=tf.data.AUTOTUNE)

  def eval_images(self, split, process_index, process_count):
    s = self._split(split)
    lo, hi = shard_bounds(len(s.paths), process_index, process_count)
    ds = tf.data.Dataset.from_tensor_slices(
        (np.asarray(s.paths[lo:hi], dtype=str), np.asarray(s.labels[lo:hi], dtype=np.int32)))
    return ds.map(lambda p, y: {"image": augment.decode_rgb(tf.io.read_file(p)), "label": y},
                  num_parallel_calls=tf.data.AUTOTUNE)


def _tfds_builder(config) -> tfds.core.DatasetBuilder:
  name = config.dataset
  data_dir = config.data_dir or None
  if name == "embedded":
    return embedded.builder(int(config.embedded_train_size), int(config.embedded_eval_size), data_dir)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(
        f"config.dataset={name!r} is neither an existing image folder nor a TFDS dataset name. "
        "Use 'embedded', a TFDS name such as 'imagenet2012' or 'cifar10', or the path of a folder "
        "laid out as <root>/<split>/<class>/<image>.") from None
  if builder.name == "imagenet2012":
    try:
      imagenet.ensure_prepared(builder)
    except imagenet.MissingImageNet as e:
      raise DataError(str(e)) from None
  elif not builder.is_prepared():
    logging.info("Preparing TFDS dataset %s in %s (downloads it once).", name, builder.data_dir_root)
    try:
      builder.download_and_prepare()
    except Exception as e:  # network errors, manual-download datasets, ...
      raise DataError(f"TFDS could not prepare {name!r} in {builder.data_dir_root}: {e}") from e
  return builder


@functools.cache
def _tensorflow_on_host_only() -> None:
  """TensorFlow only feeds data: keeps it off the accelerators, which belong to JAX (once, before
  the pipeline first builds a dataset)."""
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:  # its devices were initialised already; too late to change
    pass


def _source(config) -> _Source:
  """The config's source; opened once per process for the fields that change what it lists or reads."""
  if not config.dataset:
    raise DataError("config.dataset is empty; set it to 'embedded', a TFDS name or a folder path.")
  return _open_source(ml_collections.FrozenConfigDict({
      "dataset": config.dataset, "data_dir": config.data_dir, "train_split": config.train_split,
      "eval_split": config.eval_split, "embedded_train_size": int(config.embedded_train_size),
      "embedded_eval_size": int(config.embedded_eval_size),
      "input": {"skip_corrupt": bool(config.input.get("skip_corrupt", True))}}))


@functools.lru_cache(maxsize=8)
def _open_source(fields: ml_collections.FrozenConfigDict) -> _Source:
  """Listing a big folder or opening a TFDS builder is done once per process for the same `fields`."""
  _tensorflow_on_host_only()
  if os.path.isdir(fields.dataset):
    return _FolderSource(fields.dataset, fields)
  return _TfdsSource(_tfds_builder(fields), fields)


# ----------------------------------------------------------------------------- public API


def get_info(config) -> DatasetInfo:
  """Sizes and class names of the configured dataset (prepares it on first use)."""
  return _source(config).info


def _local_batch(global_batch: int, process_count: int, what: str) -> int:
  if global_batch <= 0 or global_batch % process_count:
    raise DataError(f"{what}={global_batch} must be a positive multiple of the number of "
                    f"processes ({process_count}).")
  return global_batch // process_count


def _options() -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_optimization.map_parallelization = True
  return options


def train_batches(config, *, start_step: int = 0, process_index: int = 0,
                  process_count: int = 1) -> Iterator[Batch]:
  """Infinite host-local train batches; batch k is a pure function of (config, k)."""
  source = _source(config)
  local = _local_batch(config.batch_size, process_count, "config.batch_size")
  steps_per_epoch = source.info.num_train // config.batch_size
  if steps_per_epoch == 0:
    raise DataError(f"config.batch_size={config.batch_size} is larger than the train split "
                    f"({source.info.num_train} examples); lower the batch size.")
  preprocess = augment.train_preprocess(config.input)
  seed = int(config.seed)
  buffer = int(config.input.get("shuffle_buffer", 16384))
  prefetch = max(1, int(config.input.get("prefetch", 2)))
  step = int(start_step)
  if step < 0:
    raise ValueError(f"start_step={start_step} must be ≥ 0.")
  while True:
    epoch, offset = divmod(step, steps_per_epoch)
    skip = offset * local
    ds = source.train_records(epoch, skip, steps_per_epoch * local, seed, process_index,
                              process_count, buffer)
    aug_seed = tf.constant(_epoch_seed(seed, epoch, process_index) ^ 0x2A2A, tf.int64)

    def parse(pos: tf.Tensor, ex: dict[str, tf.Tensor], aug_seed=aug_seed) -> dict[str, tf.Tensor]:
      ex_seed = tf.random.experimental.stateless_fold_in(aug_seed, pos)
      return {"image": preprocess(ex["bytes"], ex_seed), "label": ex["label"]}

    ds = ds.enumerate(start=skip).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(local, drop_remainder=True).prefetch(prefetch).with_options(_options())
    for batch in ds.as_numpy_iterator():
      yield batch
      step += 1
    if step % steps_per_epoch:
      raise DataError(f"Epoch {epoch} of the train split ended early (at step {step}); the "
                      "dataset is smaller than its metadata says. Re-prepare it.")


def num_eval_batches(config, *, split: str | None = None, process_count: int = 1,
                     batch_size: int | None = None) -> int:
  """Batches every process yields for `split` (the largest shard, rounded up)."""
  source = _source(config)
  split = split or config.eval_split
  local = _local_batch(batch_size or config.eval_batch_size, process_count,
                       "eval batch size" if batch_size else "config.eval_batch_size")
  largest = max(source.split_size(split, i, process_count) for i in range(process_count))
  return max(1, math.ceil(largest / local))


def eval_batches(config, *, split: str | None = None, process_index: int = 0,
                 process_count: int = 1, preprocess_fn: PreprocessFn | None = None,
                 batch_size: int | None = None) -> Iterator[Batch]:
  """Finite host-local eval batches {'image', 'label', 'mask'}; padding has mask 0.

  `batch_size` is global (like config.eval_batch_size); each process gets 1/process_count.
  """
  source = _source(config)
  split = split or config.eval_split
  local = _local_batch(batch_size or config.eval_batch_size, process_count,
                       "eval batch size" if batch_size else "config.eval_batch_size")
  n_batches = num_eval_batches(config, split=split, process_count=process_count,
                               batch_size=batch_size)
  shard = source.split_size(split, process_index, process_count)
  preprocess = preprocess_fn or default_eval_preprocess(config)

  def prep(ex: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    return {"image": tf.cast(preprocess(ex["image"]), tf.float32), "label": ex["label"],
            "mask": tf.constant(1.0, tf.float32)}

  ds = source.eval_images(split, process_index, process_count)
  ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
  yield from pad_and_batch(ds, shard, n_batches, local).as_numpy_iterator()


def num_padded_batches(n: int, local_batch: int, process_count: int) -> int:
  """Batches every process yields for n examples: its largest shard, rounded up (at least one)."""
  largest = shard_bounds(n, 0, process_count)
  return max(1, math.ceil((largest[1] - largest[0]) / local_batch))


def pad_and_batch(ds: tf.data.Dataset, shard_size: int, n_batches: int, local_batch: int,
                  fill: dict[str, int] | None = None) -> tf.data.Dataset:
  """The eval padder: a finite dataset of `shard_size` elements, padded with blanks to
  n_batches·local_batch elements and batched.

  A blank is zeros in every field (so its 'mask' is 0 and it never counts); `fill` gives
  another value for a field (e.g. -1 for a label list that marks "no label").
  """
  _tensorflow_on_host_only()
  pad = n_batches * local_batch - shard_size
  if pad:
    blank = {}
    for key, spec in ds.element_spec.items():
      if not spec.shape.is_fully_defined():
        raise ValueError(f"Eval field {key!r} must have a static shape to be padded, got {spec.shape}.")
      blank[key] = tf.fill(spec.shape, tf.constant((fill or {}).get(key, 0), spec.dtype))
    ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(pad))
  return ds.batch(local_batch, drop_remainder=True).prefetch(2).with_options(_options())
