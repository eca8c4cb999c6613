"""Penultimate-layer features of a split, computed once per checkpoint and kept on disk.

The features of an image are the input of the model's classifier, the last linear layer it calls:
for AlexNet, ZFNet and VGG the 4096 activations of fc7 after its ReLU (what Figure 4 of the 2012
paper compares); for GoogLeNet, ResNet, ResNeXt and SE-ResNet the globally pooled features; for
SqueezeNet, whose classifier is a 1×1 convolution, its input averaged over positions. They are found
by intercepting the model's layer calls (`flax.linen.intercept_methods`), so no model needs a
second output.

Every image is seen as evaluation sees it (the config's centre view), and beside its features the
same view is kept as a small uint8 picture (`pixels` × `pixels`), which the neighbour grids show and
the raw-pixel comparison measures. Under <workdir>/features/:

  <split>-<step>.npy           float32 [N, D] features, memory-mapped when read
  <split>-<step>.json          what they are (model, dataset, view, count); written last, so a cut-short
                               run leaves no cache that looks complete
  <split>-pixels<P>.npy        uint8 [N, P, P, 3] the pictures (the same for every step)
  <split>-labels.npy           int32 [N] labels; <split>-files.txt the image files of a folder dataset
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from alexnet_jax import atomic
from alexnet_jax import parallel
from alexnet_jax import progress
from alexnet_jax import runtime
from alexnet_jax.data import device_augment
from alexnet_jax.errors import UserError
from alexnet_jax.models import layers

CACHE_FORMAT = 1


class FeaturesError(UserError):
  """A split's features cannot be computed as asked (another split, a dataset that changed under us)."""
_LINEAR = (nn.Dense, nn.Conv, layers.Conv)


def penultimate(apply_fn, variables: dict, images: jax.Array) -> jax.Array:
  """float32 [B, D]: the input of the last linear layer the model calls (averaged over positions if 4-D)."""
  seen: list[jax.Array] = []

  def record(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and isinstance(context.module, _LINEAR):
      seen.append(args[0])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    apply_fn(variables, images, train=False)
  x = seen[-1].astype(jnp.float32)
  return x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1) if x.ndim == 4 else x.reshape(x.shape[0], -1)


def embed_step(state, batch: dict, *, input_cfg, pixels: int) -> dict[str, jax.Array]:
  """A batch (uint8 store images or normalised views) → its features and its view as uint8 pictures."""
  view = device_augment.eval_batch(input_cfg, batch)["image"]
  feats = penultimate(state.apply_fn, runtime.model_variables(state), view)
  mean, std = jnp.asarray(input_cfg.mean_rgb, jnp.float32), jnp.asarray(input_cfg.std_rgb, jnp.float32)
  rgb = view.astype(jnp.float32) * std + mean
  small = jax.image.resize(rgb, (rgb.shape[0], pixels, pixels, 3), "linear", antialias=True)
  return {"features": feats, "pixels": jnp.clip(jnp.round(small), 0, 255).astype(jnp.uint8)}


class Embedder:
  """A restored model and its jitted embedding step on the device mesh."""

  def __init__(self, rt: runtime.Runtime, state, step: int, pixels: int):
    from alexnet_jax.eval import views
    self.runtime, self.state, self.step, self.pixels = rt, state, step, pixels
    self.config = rt.config
    self.batch_size = views.images_per_batch(self.config, "center", jax.device_count())
    fn = functools.partial(embed_step, input_cfg=self.config.input, pixels=pixels)
    self._step = jax.jit(fn, in_shardings=(rt.state_sharding, rt.data_sharding), out_shardings=rt.repl)

  def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch = {"image": batch["image"]}
    return jax.device_get(self._step(self.state, parallel.to_global(batch, self.runtime.data_sharding)))

  def images(self, views: np.ndarray) -> dict[str, np.ndarray]:
    """Normalised views [n, S, S, 3] (any n) → features and pictures, padded to whole batches."""
    out: list[dict[str, np.ndarray]] = []
    for lo in range(0, len(views), self.batch_size):
      part = views[lo:lo + self.batch_size]
      pad = np.zeros((self.batch_size - len(part),) + part.shape[1:], part.dtype)
      got = self({"image": np.concatenate([part, pad])})
      out.append({k: v[:len(part)] for k, v in got.items()})
    return {k: np.concatenate([o[k] for o in out]) for k in ("features", "pixels")}


@dataclasses.dataclass
class SplitFeatures:
  """A split's cached features (memory-mapped), pictures, labels and, for folders, files."""
  features: np.ndarray
  pixels: np.ndarray
  labels: np.ndarray
  files: list[str]
  meta: dict[str, Any]


def cache_dir(workdir: str) -> str:
  return os.path.join(workdir, "features")


def _paths(workdir: str, split: str, step: int, pixels: int) -> dict[str, str]:
  d = cache_dir(workdir)
  return {"features": os.path.join(d, f"{split}-{step}.npy"), "meta": os.path.join(d, f"{split}-{step}.json"),
          "pixels": os.path.join(d, f"{split}-pixels{pixels}.npy"), "labels": os.path.join(d, f"{split}-labels.npy"),
          "files": os.path.join(d, f"{split}-files.txt")}


def _identity(config, split: str, step: int, count: int) -> dict[str, Any]:
  """What a cache must match to be reused: the model, data, split, view and checkpoint."""
  return {"format": CACHE_FORMAT, "step": int(step), "split": split, "count": int(count),
          "model": config.model.name, "dataset": str(config.dataset), "image_size": int(config.input.image_size),
          "resize_size": int(config.input.resize_size), "pipeline": str(config.input.pipeline)}


def _folder_files(config, split: str) -> list[str]:
  """The image files of a folder dataset's split, in the order its batches come (else [])."""
  from alexnet_jax.data import folder
  root = str(config.dataset)
  if not os.path.isdir(root):
    return []
  classes = folder.class_names(root, folder.resolve_split(root, config.train_split))
  return list(folder.load_split(root, split, classes, bool(config.input.get("skip_corrupt", True))).paths)


def _load(paths: dict[str, str], identity: dict[str, Any], pixels: int) -> SplitFeatures | None:
  """The cache, if complete and made for the same identity; None otherwise."""
  try:
    with open(paths["meta"]) as f:
      meta = json.load(f)
    if {k: meta.get(k) for k in identity} != identity:
      return None
    feats = np.load(paths["features"], mmap_mode="r")
    pics = np.load(paths["pixels"], mmap_mode="r")
    labels = np.load(paths["labels"])
  except (OSError, ValueError):
    return None
  n = identity["count"]
  if feats.shape[0] != n or pics.shape != (n, pixels, pixels, 3) or labels.shape != (n,):
    return None
  files = []
  if os.path.exists(paths["files"]):
    with open(paths["files"]) as f:
      files = f.read().splitlines()
  return SplitFeatures(feats, pics, labels, files, meta)


def _split_size(config, info, split: str) -> int:
  if split == config.train_split:
    return int(info.num_train)
  if split == config.eval_split:
    return int(info.num_eval)
  raise FeaturesError(f"Features are computed for the train split ({config.train_split!r}) or the eval split "
                  f"({config.eval_split!r}), not {split!r}.")


def split_features(embedder: Embedder, workdir: str, split: str) -> SplitFeatures:
  """The split's features at the embedder's checkpoint: from the cache, or computed once and cached."""
  config, step, pixels = embedder.config, embedder.step, embedder.pixels
  count = _split_size(config, embedder.runtime.info, split)
  paths = _paths(workdir, split, step, pixels)
  identity = _identity(config, split, step, count)
  cached = _load(paths, identity, pixels)
  if cached is not None:
    logging.info("Read the cached features of %s at step %d from %s", split, step, paths["features"])
    return cached
  os.makedirs(cache_dir(workdir), exist_ok=True)
  batches = runtime.batch_source(config).eval_batches(config, split=split, batch_size=embedder.batch_size)
  feats = pics = None
  labels = np.zeros((count,), np.int32)
  bar = progress.Progress(count, f"Features of {split} at step {step}", unit="images")
  done = 0
  for batch in batches:
    out = embedder(batch)
    take = min(int(np.asarray(batch["mask"]).sum()), count - done)
    if feats is None:
      feats = np.lib.format.open_memmap(paths["features"] + ".tmp", "w+", np.float32, (count, out["features"].shape[1]))
      pics = np.lib.format.open_memmap(paths["pixels"] + ".tmp", "w+", np.uint8, (count, pixels, pixels, 3))
    feats[done:done + take] = out["features"][:take]
    pics[done:done + take] = out["pixels"][:take]
    labels[done:done + take] = np.asarray(batch["label"])[:take]
    done += take
    bar.advance(take)
  bar.finish()
  if done != count or feats is None:
    raise FeaturesError(f"The {split} split yielded {done} images where its dataset info says {count}; did the "
                        "data change while it was read? Run the command again (nothing was cached).")
  feats.flush()
  pics.flush()
  del feats, pics
  # Each file is complete before it gets its name; the meta file, written last, marks the cache done.
  for key in ("features", "pixels"):
    os.replace(paths[key] + ".tmp", paths[key])
  _save_npy(paths["labels"], labels)
  files = _folder_files(config, split)
  if files:
    atomic.write_text(paths["files"], "\n".join(files) + "\n")
  dim = int(np.load(paths["features"], mmap_mode="r").shape[1])
  atomic.write_text(paths["meta"], json.dumps({**identity, "dim": dim, "pixels": pixels}, indent=1))
  logging.info("Wrote the features of %s at step %d to %s", split, step, paths["features"])
  loaded = _load(paths, identity, pixels)
  assert loaded is not None
  return loaded


def _save_npy(path: str, array: np.ndarray) -> None:
  with atomic.write(path, "wb") as f:
    np.save(f, array)


def file_views(config, paths: Sequence[str]) -> tuple[list[str], np.ndarray, list[str]]:
  """(readable files, their normalised centre views [n, S, S, 3], unreadable files), as predict reads them."""
  from alexnet_jax import predict
  from alexnet_jax.eval import views
  preprocess = views.make_preprocess("center", config)
  read, got, bad = predict._load_images(paths, preprocess)  # noqa: SLF001 - the predict command's own reader
  size = int(config.input.image_size)
  return read, (np.concatenate(got) if got else np.zeros((0, size, size, 3), np.float32)), bad
