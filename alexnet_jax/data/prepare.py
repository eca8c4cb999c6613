"""Preparing a store: source records → decode → resize to the stored size → uint8 shards.

Runs once per (source, stored size), on every host core (tf.data's parallel map decodes
and resizes). The store is built in `<path>.incomplete/`; each shard is written under a
temporary name and renamed when complete, with a small JSON sidecar (count, sizes,
CRC-32s) renamed last, so an interrupted preparation resumes at the first shard without
a sidecar. Only when every shard is there is the manifest written and the folder
renamed to its final name: a store that exists is complete.

The stored image is the 2012 paper's preprocessing (Sec. 2) at side S: the short side
resized to S with antialiased bilinear weights (the streaming path's resize), then the
central S×S square.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time

import numpy as np
from absl import logging

from alexnet_jax import atomic
from alexnet_jax import progress
from alexnet_jax.data import store_layout as store_lib
from alexnet_jax.data.store_layout import StoreError

_SHARD_BYTES = 1 << 30  # images per shard: about 1 GiB of pixels
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _records(source, split: str, skip: int):
  """tf.data of {'bytes', 'label'} of `split` in a fixed order, skipping `skip` without decoding."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
  from alexnet_jax.data import input_pipeline
  if isinstance(source, input_pipeline._FolderSource):  # noqa: SLF001 - the pipeline's own source types
    s = source._split(split)  # noqa: SLF001
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(s.paths, dtype=str),
                                             np.asarray(s.labels, dtype=np.int32))).skip(skip)
    return ds.map(lambda p, y: {"bytes": tf.io.read_file(p), "label": y})
  ds = source.builder.as_dataset(split=split, shuffle_files=False,
                                 read_config=tfds.ReadConfig(try_autocache=False),
                                 decoders={"image": tfds.decode.SkipDecoding()})
  return ds.skip(skip).map(lambda ex: {"bytes": ex["image"], "label": tf.cast(ex["label"], tf.int32)})


def _square(size: int):
  """f(bytes) → uint8 [size, size, 3]: decode, short side → size, central square."""
  import tensorflow as tf
  from alexnet_jax.data import augment

  def fn(image_bytes):
    image = augment.center_crop(augment.resize_short_side(augment.decode_rgb(image_bytes), size), size)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(image, [size, size, 3])

  return fn


def _gib(n: float) -> str:
  return f"{n / 2**30:.2f} GiB"


def _space_error(path: str, needed: int, cause: str) -> StoreError:
  return StoreError(f"Not enough disk space to prepare the store at {path}: {cause}; it needs about "
                    f"{_gib(needed)} more. Free space there, or set config.input.store_dir (or "
                    "$ALEXNET_JAX_DATA) to a bigger disk; running the same command resumes.")


def _write_npy(path: str, array: np.ndarray) -> None:
  with atomic.write(path, "wb") as f:
    np.save(f, array)
    f.flush()
    os.fsync(f.fileno())


@contextlib.contextmanager
def _locked(path: str):
  """One preparer per store at a time (another run waits, then finds the store ready)."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path + ".lock", "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def prepare(config, *, shard_bytes: int = _SHARD_BYTES, log_every_s: float = 10.0) -> str:
  """Prepares the config's store (resuming an interrupted preparation); returns its path."""
  final = store_lib.store_path(config)
  with _locked(final):
    if os.path.exists(os.path.join(final, store_lib.MANIFEST)):
      logging.info("Store %s is already prepared.", final)
      return final
    return _prepare_locked(config, final, shard_bytes, log_every_s)


def _have_tensorflow() -> bool:
  import importlib.util
  try:
    return importlib.util.find_spec("tensorflow") is not None
  except ValueError:  # a module set to None in sys.modules (TensorFlow blocked)
    return False


def _prepare_locked(config, final: str, shard_bytes: int, log_every_s: float) -> str:
  if not _have_tensorflow() and os.path.isdir(config.dataset):
    return _prepare_folder_without_tf(config, final, shard_bytes)
  from alexnet_jax.data import input_pipeline
  try:
    source = input_pipeline._source(config)  # noqa: SLF001 - the same sources the stream reads
  except input_pipeline.DataError as e:
    raise StoreError(str(e)) from None
  size = store_lib.stored_size(config)
  per_image = size * size * 3
  shard_n = max(1, shard_bytes // per_image)
  work = final + store_lib.INCOMPLETE
  os.makedirs(work, exist_ok=True)
  splits = list(dict.fromkeys([config.train_split, config.eval_split]))
  counts = {s: source.split_size(s, 0, 1) for s in splits}

  def done_shards(split: str) -> list[dict]:
    folder = os.path.join(work, store_lib.split_dir(split))
    out = []
    for i in range(math_ceil(counts[split], shard_n)):
      side = os.path.join(folder, f"shard-{i:05d}.json")
      if not os.path.exists(side):
        break
      with open(side) as f:
        out.append(json.load(f))
    return out

  remaining = sum((counts[s] - sum(d["count"] for d in done_shards(s))) * (per_image + 4) for s in splits)
  free = shutil.disk_usage(work).free
  if free < remaining:
    raise _space_error(final, remaining, f"{_gib(free)} free")
  logging.info("Preparing store %s: %s at %d², %s to write, %d images per shard.", final,
               ", ".join(f"{s} ({counts[s]} images)" for s in splits), size, _gib(remaining), shard_n)

  split_entries = {}
  for split in splits:
    folder = os.path.join(work, store_lib.split_dir(split))
    os.makedirs(folder, exist_ok=True)
    shards = done_shards(split)
    done = sum(d["count"] for d in shards)
    if done:
      logging.info("%s: resuming after %d of %d images (%d shards).", split, done, counts[split], len(shards))
    # Rate and ETA count this run's images only (a resumed run starts after `done`).
    bar = progress.Progress(counts[split] - done, f"prepare {split}" + (f" (after {done} done)" if done else ""),
                            unit="images", every_s=log_every_s)
    if done < counts[split]:
      ds = _records(source, split, done).map(
          lambda ex: (_square(size)(ex["bytes"]), ex["label"]), num_parallel_calls=-1, deterministic=True)
      # tf.data allocates a whole batch of this static shape up front: a split smaller than a
      # shard (small datasets, test stores) must not allocate and zero a GiB of pixels for it.
      # The shards are the same: full ones of shard_n, then the rest.
      ds = ds.batch(min(shard_n, counts[split] - done)).prefetch(1)
      for images, labels in ds.as_numpy_iterator():
        try:
          entry = _write_shard(folder, len(shards), images, labels)
        except OSError as e:
          if e.errno in _DISK_ERRNOS:
            left = (counts[split] - done) * (per_image + 4)
            raise _space_error(final, left, f"the disk filled after {done} {split} images") from None
          raise
        shards.append(entry)
        done += len(labels)
        bar.advance(len(labels))
      bar.finish()
    if done != counts[split]:
      raise StoreError(f"The {split} split gave {done} images, its metadata says {counts[split]}; "
                       "re-prepare the source dataset.")
    split_entries[split] = {"count": done, "dir": store_lib.split_dir(split), "shards": shards}

  _finish(config, work, final, size, source.info.class_names, split_entries)
  logging.info("Store ready: %s", final)
  return final


def _prepare_folder_without_tf(config, final: str, shard_bytes: int) -> str:
  """An image folder on a machine without TensorFlow: PIL decodes (see prepare_folder.py)."""
  from alexnet_jax.data import prepare_folder
  size = store_lib.stored_size(config)
  work = final + store_lib.INCOMPLETE
  if os.path.exists(work):
    shutil.rmtree(work)  # this path does not resume: start the half-written store again
  os.makedirs(work)
  logging.info("Preparing store %s at %d² with PIL (TensorFlow is not installed).", final, size)
  prepare_folder.prepare(config, work, size, max(1, shard_bytes // (size * size * 3)), _write_shard,
                         lambda classes, entries: _finish(config, work, final, size, classes, entries,
                                                          decoder="pil"))
  logging.info("Store ready: %s", final)
  return final


def _write_shard(folder: str, i: int, images: np.ndarray, labels: np.ndarray) -> dict:
  """Shard i: images and labels under temporary names, renamed; its sidecar (sizes, CRC-32s) last."""
  entry = {"images": f"images-{i:05d}.npy", "labels": f"labels-{i:05d}.npy", "count": len(labels)}
  _write_npy(os.path.join(folder, entry["images"]), np.ascontiguousarray(images, np.uint8))
  _write_npy(os.path.join(folder, entry["labels"]), np.asarray(labels, np.int32))
  for kind in ("images", "labels"):
    path = os.path.join(folder, entry[kind])
    entry[f"{kind}_bytes"] = os.path.getsize(path)
    entry[f"{kind}_crc32"] = store_lib.file_crc32(path)
  side = os.path.join(folder, f"shard-{i:05d}.json")
  atomic.write_json(side, entry)
  return entry


def _finish(config, work: str, final: str, size: int, class_names, split_entries: dict,
            decoder: str = "tensorflow") -> None:
  """Writes the manifest and makes the store visible under its final name."""
  manifest = {"decoder": decoder,
      "format_version": store_lib.FORMAT_VERSION, "source": store_lib.source_fields(config),
      "stored_size": size, "resize_method": store_lib.RESIZE_METHOD,
      "class_names": list(class_names), "splits": split_entries,
      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  with open(os.path.join(work, store_lib.MANIFEST), "w") as f:
    json.dump(manifest, f, indent=1)
  if os.path.exists(final):  # a leftover without a manifest (never complete): replace it
    shutil.rmtree(final)
  os.replace(work, final)


def write_arrays(config, splits: dict[str, tuple[np.ndarray, np.ndarray]], class_names,
                 shard_bytes: int = _SHARD_BYTES) -> str:
  """A store for `config` from in-memory uint8 [n, S, S, 3] images and labels (benchmarks, tests).

  No TensorFlow: the arrays are already at the stored size.
  """
  final = store_lib.store_path(config)
  size = store_lib.stored_size(config)
  work = final + store_lib.INCOMPLETE
  entries = {}
  for split, (images, labels) in splits.items():
    if images.shape[1:] != (size, size, 3):
      raise StoreError(f"write_arrays: {split} images are {images.shape[1:]}, the store needs {(size, size, 3)}.")
    folder = os.path.join(work, store_lib.split_dir(split))
    os.makedirs(folder, exist_ok=True)
    n = max(1, shard_bytes // (size * size * 3))
    shards = [_write_shard(folder, i, images[lo:lo + n], labels[lo:lo + n])
              for i, lo in enumerate(range(0, len(labels), n))]
    entries[split] = {"count": len(labels), "dir": store_lib.split_dir(split), "shards": shards}
  _finish(config, work, final, size, class_names, entries)
  return final


def math_ceil(n: int, d: int) -> int:
  return -(-n // d)
