"""Preparing a store from an image folder without TensorFlow (PIL decodes, a process pool).

`prepare.prepare` uses this when TensorFlow is not installed (an accelerator machine with
only JAX, say) and the dataset is an image folder. The listing, labels and split names are
the streaming path's (`folder.py`); each image is decoded by PIL, converted to RGB, its short
side resized to S with PIL's antialiased bilinear filter (skipped when it already is S), and
the central S×S square kept. Unreadable files are skipped and named, as the streaming path
does. Shards, sidecars and the manifest are written exactly as `prepare.py` writes them,
with `"decoder": "pil"` in the manifest. The pixels are close to, not equal to, the
TensorFlow path's: TensorFlow decodes JPEGs with libjpeg's fast integer IDCT by default, PIL
with the accurate one (a few grey levels apart, up to about 10 at quality 95; PIL equals
TensorFlow's `dct_method='INTEGER_ACCURATE'`), and a resize can differ by a level here and there.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent import futures

import numpy as np
from absl import logging

from alexnet_jax import progress
from alexnet_jax.data import folder
from alexnet_jax.data import store_layout as store_lib
from alexnet_jax.data.store_layout import StoreError


def square(path: str, size: int) -> np.ndarray | None:
  """uint8 [size, size, 3]: short side → size, central square; None when PIL cannot read it."""
  from PIL import Image
  try:
    with Image.open(path) as im:
      im = im.convert("RGB")
      w, h = im.size
      if min(w, h) != size:
        scale = size / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = im.size
      left, top = (w - size) // 2, (h - size) // 2
      return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)
  except (OSError, ValueError, SyntaxError):
    return None


def _chunk(paths: list[str], *, size: int) -> list[np.ndarray | None]:
  return [square(p, size) for p in paths]


def prepare(config, work: str, size: int, shard_n: int, write_shard, finish) -> None:
  """Writes every split of `config` into `work` (then `finish` renames it); see the module docstring."""
  root = config.dataset
  train_dir = folder.resolve_split(root, config.train_split)
  classes = folder.class_names(root, train_dir)
  entries = {}
  workers = os.cpu_count() or 1
  # forkserver: the caller may be multi-threaded (JAX, the staging thread), where fork() can deadlock.
  with futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
    for split in dict.fromkeys([config.train_split, config.eval_split]):
      name = folder.resolve_split(root, split)
      split_dir = os.path.join(root, name)
      items = folder._list_images(split_dir, classes)  # noqa: SLF001 - the streaming path's listing
      if not items:
        raise StoreError(f"Split folder {split_dir!r} contains no images.")
      out = os.path.join(work, store_lib.split_dir(split))
      os.makedirs(out, exist_ok=True)
      bar = progress.Progress(len(items), f"prepare {split}", unit="images")
      shards, skipped = [], []
      for lo in range(0, len(items), shard_n):
        part = items[lo:lo + shard_n]
        paths = [os.path.join(split_dir, r) for r, _ in part]
        step = max(1, len(paths) // (4 * workers))
        chunks = [paths[i:i + step] for i in range(0, len(paths), step)]
        decoded = [im for ims in pool.map(functools.partial(_chunk, size=size), chunks) for im in ims]
        keep = [i for i, im in enumerate(decoded) if im is not None]
        skipped += [part[i][0] for i, im in enumerate(decoded) if im is None]
        if keep:
          shards.append(write_shard(out, len(shards), np.stack([decoded[i] for i in keep]),
                                    np.asarray([part[i][1] for i in keep], np.int32)))
        bar.advance(len(part))
      bar.finish()
      if skipped:
        logging.warning("Skipped %d unreadable image(s) in %s: %s", len(skipped), split_dir,
                        ", ".join(skipped[:50]))
      entries[split] = {"count": sum(s["count"] for s in shards), "dir": store_lib.split_dir(split),
                        "shards": shards}
  finish(classes, entries)
