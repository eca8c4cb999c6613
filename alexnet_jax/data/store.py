"""Reading a prepared image store: memory-mapped uint8 squares, no TensorFlow.

A store is a folder `<store_dir>/<name>/` written once by `prepare.py`:

  manifest.json                 source, stored size, resize method, format version, class
                                names, and per split its count and shards (with CRC-32s)
  <split>/images-00000.npy      uint8 [n, S, S, 3] (NumPy .npy, opened with mmap_mode='r')
  <split>/labels-00000.npy      int32 [n]

Train order (the determinism contract of the streaming path, kept): the global batch k is
rows perm_e[(k mod P)·B : (k mod P + 1)·B] of the permutation perm_e of epoch e = k // P
(P = num_train // B, the last partial batch dropped), perm_e a function of (seed, e) only.
Process p of n reads rows [p·B/n, (p+1)·B/n) of that batch, so the hosts' slices
concatenate to the global batch. Augmentation happens on the device
(device_augment.py); only uint8 bytes and int32 labels leave the host.

Eval batches carry a mask like the streaming path's: each process reads an even,
contiguous shard of the split and pads it with masked blanks to the same batch count.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
from typing import Iterator

import numpy as np

# The layout, shared with the writer; the names other modules read from the store are kept here.
from alexnet_jax.data.store_layout import (FORMAT_VERSION, MANIFEST, RESIZE_METHOD,  # noqa: F401
                                            DatasetInfo, StoreCorruptError, StoreError, StoreMismatchError,
                                            file_crc32, source_fields, store_path, stored_size)

Batch = dict[str, np.ndarray]


# ----------------------------------------------------------------------------- the reader


class Store:
  """A prepared store opened read-only; shards are memory-mapped, never loaded whole."""

  def __init__(self, path: str):
    self.path = path
    manifest_path = os.path.join(path, MANIFEST)
    try:
      with open(manifest_path) as f:
        self.manifest = json.load(f)
    except FileNotFoundError:
      raise StoreError(f"{path} is not a prepared store (no {MANIFEST}). Run --mode=prepare.") from None
    except (OSError, ValueError) as e:
      raise StoreCorruptError(f"{manifest_path} cannot be read ({e}). Delete {path} and run "
                              "--mode=prepare again.") from None
    if self.manifest.get("format_version") != FORMAT_VERSION:
      raise StoreMismatchError(
          f"{path} has store format {self.manifest.get('format_version')}; this version reads format "
          f"{FORMAT_VERSION}. Delete it and run --mode=prepare again.")
    self.size = int(self.manifest["stored_size"])
    self.class_names = tuple(self.manifest["class_names"])
    self._images: dict[str, list[np.ndarray]] = {}
    self._labels: dict[str, np.ndarray] = {}
    self._starts: dict[str, np.ndarray] = {}
    for split in self.manifest["splits"]:
      self._open_split(split)

  def _shard_files(self, split: str) -> list[tuple[str, str, dict]]:
    entry = self.manifest["splits"][split]
    folder = os.path.join(self.path, entry["dir"])
    return [(os.path.join(folder, s["images"]), os.path.join(folder, s["labels"]), s)
            for s in entry["shards"]]

  def _open_split(self, split: str) -> None:
    images, labels, counts = [], [], []
    for img_path, lbl_path, shard in self._shard_files(split):
      for path, key in ((img_path, "images_bytes"), (lbl_path, "labels_bytes")):
        actual = os.path.getsize(path) if os.path.exists(path) else -1
        if actual != shard[key]:
          what = "missing" if actual < 0 else f"{actual} bytes, the manifest says {shard[key]}"
          raise StoreCorruptError(f"Store shard {path} is damaged ({what}). Delete {self.path} and "
                                  "run --mode=prepare again.")
      try:
        img = np.load(img_path, mmap_mode="r")
        lbl = np.load(lbl_path)
      except (OSError, ValueError) as e:
        raise StoreCorruptError(f"Store shard {img_path} cannot be read ({e}). Delete {self.path} "
                                "and run --mode=prepare again.") from None
      if img.shape != (shard["count"], self.size, self.size, 3) or lbl.shape != (shard["count"],):
        raise StoreCorruptError(f"Store shard {img_path} holds {img.shape}, expected "
                                f"{(shard['count'], self.size, self.size, 3)}. Re-prepare the store.")
      images.append(img)
      labels.append(lbl.astype(np.int32))
      counts.append(shard["count"])
    self._images[split] = images
    self._labels[split] = np.concatenate(labels) if labels else np.zeros((0,), np.int32)
    self._starts[split] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

  def count(self, split: str) -> int:
    if split not in self._labels:
      raise StoreError(f"Split {split!r} is not in the store {self.path} (it has "
                       f"{sorted(self._labels)}). Prepare a store for this split.")
    return len(self._labels[split])

  def labels(self, split: str) -> np.ndarray:
    self.count(split)
    return self._labels[split]

  def gather(self, split: str, rows: np.ndarray) -> np.ndarray:
    """uint8 [len(rows), S, S, 3], in the order of `rows` (one copy out of the page cache)."""
    starts = self._starts[split]
    shard_of = np.searchsorted(starts, rows, side="right") - 1
    out = np.empty((len(rows), self.size, self.size, 3), np.uint8)
    for s in np.unique(shard_of):
      sel = np.nonzero(shard_of == s)[0]
      local = rows[sel] - starts[s]
      order = np.argsort(local, kind="stable")  # ascending reads are kinder to the disk
      out[sel[order]] = self._images[split][s][local[order]]
    return out

  def verify(self) -> None:
    """Recomputes every shard's CRC-32; raises StoreCorruptError naming the first bad shard."""
    for split in self.manifest["splits"]:
      for img_path, lbl_path, shard in self._shard_files(split):
        for path, key in ((img_path, "images_crc32"), (lbl_path, "labels_crc32")):
          if file_crc32(path) != shard[key]:
            raise StoreCorruptError(
                f"Store shard {path} is damaged (its checksum does not match the manifest). Delete "
                f"{self.path} and run --mode=prepare again.")

  def check_matches(self, config) -> None:
    """Refuses a store made for another config, naming every field that differs."""
    want = {**source_fields(config), "stored_size": stored_size(config),
            "resize_method": RESIZE_METHOD}
    have = {**self.manifest.get("source", {}), "stored_size": self.size,
            "resize_method": self.manifest.get("resize_method")}
    diff = [f"{k}: store {have.get(k)!r}, config {v!r}" for k, v in want.items() if have.get(k) != v]
    for split in (config.train_split, config.eval_split):
      if split not in self.manifest["splits"]:
        diff.append(f"split {split!r}: not in the store")
    if diff:
      raise StoreMismatchError(f"The store {self.path} was made for another config ({'; '.join(diff)}). "
                               "Set config.input.store_dir to another folder or delete this store.")


class Verifier:
  """Checks every shard's checksum in a background thread; `check()` raises what it found."""

  def __init__(self, store: Store):
    self.error: StoreCorruptError | None = None
    self._thread = threading.Thread(target=self._run, args=(store,), daemon=True, name="store-verify")
    self._thread.start()

  def _run(self, store: Store) -> None:
    try:
      store.verify()
    except StoreCorruptError as e:
      self.error = e

  def check(self, wait: bool = False) -> None:
    if wait:
      self._thread.join()
    if self.error is not None:
      raise self.error


# ----------------------------------------------------------------------------- opening


@functools.lru_cache(maxsize=8)
def _opened(path: str, manifest_id: tuple[int, int]) -> Store:
  """One Store per store folder and manifest file: a store prepared again (a new manifest) is opened anew."""
  return Store(path)


def open_store(config, *, prepare_if_missing: bool = True) -> Store:
  """The config's store, checked against it; prepared first when missing (needs TensorFlow)."""
  path = store_path(config)
  manifest = os.path.join(path, MANIFEST)
  if not os.path.exists(manifest):
    if not prepare_if_missing:
      raise StoreError(f"No prepared store at {path}. Run: python main.py --config=... --mode=prepare")
    from alexnet_jax.data import prepare  # TensorFlow reads the source records
    prepare.prepare(config)
  stat = os.stat(manifest)
  store = _opened(path, (stat.st_ino, stat.st_mtime_ns))
  store.check_matches(config)
  return store


def get_info(config) -> DatasetInfo:
  store = open_store(config)
  return DatasetInfo(name=store.manifest["source"]["dataset"], num_classes=len(store.class_names),
                     num_train=store.count(config.train_split), num_eval=store.count(config.eval_split),
                     class_names=store.class_names)


# ----------------------------------------------------------------------------- batches


def _local(global_batch: int, process_count: int, what: str) -> int:
  if global_batch <= 0 or global_batch % process_count:
    raise StoreError(f"{what}={global_batch} must be a positive multiple of the number of "
                     f"processes ({process_count}).")
  return global_batch // process_count


@functools.lru_cache(maxsize=2)
def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
  """The permutation of epoch `epoch`: a function of (seed, epoch) only, the same on every host.

  Cached (read-only) so that consecutive steps of an epoch do not redraw it.
  """
  rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0x5704E]))
  order = rng.permutation(n)
  order.flags.writeable = False
  return order


def batch_rows(seed: int, step: int, n: int, batch_size: int, process_index: int = 0,
               process_count: int = 1) -> np.ndarray:
  """Rows of the train split in this process's slice of global batch `step`."""
  steps_per_epoch = n // batch_size
  epoch, offset = divmod(step, steps_per_epoch)
  local = batch_size // process_count
  start = offset * batch_size + process_index * local
  return epoch_order(seed, epoch, n)[start:start + local]


def train_batches(config, *, start_step: int = 0, process_index: int = 0,
                  process_count: int = 1) -> Iterator[Batch]:
  """Infinite host-local uint8 train batches; batch k is a pure function of (seed, k)."""
  store = open_store(config)
  split = config.train_split
  n = store.count(split)
  _local(config.batch_size, process_count, "config.batch_size")
  if n // config.batch_size == 0:
    raise StoreError(f"config.batch_size={config.batch_size} is larger than the train split "
                     f"({n} examples); lower the batch size.")
  verifier = Verifier(store)
  labels = store.labels(split)
  step, seed = int(start_step), int(config.seed)
  while True:
    verifier.check()
    rows = batch_rows(seed, step, n, config.batch_size, process_index, process_count)
    yield {"image": store.gather(split, rows), "label": labels[rows]}
    step += 1


def num_eval_batches(config, *, split: str | None = None, process_count: int = 1,
                     batch_size: int | None = None) -> int:
  n = open_store(config).count(split or config.eval_split)
  local = _local(batch_size or config.eval_batch_size, process_count, "eval batch size")
  largest = n // process_count + (1 if n % process_count else 0)
  return max(1, math.ceil(largest / local))


def eval_batches(config, *, split: str | None = None, process_index: int = 0, process_count: int = 1,
                 batch_size: int | None = None) -> Iterator[Batch]:
  """Finite host-local uint8 eval batches {'image', 'label', 'mask'}; padding has mask 0."""
  store = open_store(config)
  split = split or config.eval_split
  n = store.count(split)
  local = _local(batch_size or config.eval_batch_size, process_count, "eval batch size")
  n_batches = num_eval_batches(config, split=split, process_count=process_count, batch_size=batch_size)
  sizes = [n // process_count + (1 if i < n % process_count else 0) for i in range(process_count)]
  lo = sum(sizes[:process_index])
  rows = np.arange(lo, lo + sizes[process_index])
  labels = store.labels(split)
  for b in range(n_batches):
    take = rows[b * local:(b + 1) * local]
    pad = local - len(take)
    image = store.gather(split, take)
    yield {"image": np.concatenate([image, np.zeros((pad,) + image.shape[1:], np.uint8)]),
           "label": np.concatenate([labels[take], np.zeros((pad,), np.int32)]),
           "mask": np.concatenate([np.ones((len(take),), np.float32), np.zeros((pad,), np.float32)])}
