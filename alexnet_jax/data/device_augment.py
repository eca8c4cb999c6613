"""Augmentation on the accelerator: pure jax functions of (key, uint8 image batch).

A prepared store (alexnet_jax/data/store.py) holds every image once as a uint8 square of
side S (config.input.store_size, by default config.input.resize_size): the short side
resized to S, then the central S×S square, which is the 2012 paper's own preprocessing
(Sec. 2). Only those uint8 bytes cross to the device; everything here runs inside the
jitted step.

Geometry: the streaming path (augment.py) resizes the short side to R = resize_size and
cuts image_size (I) crops. In stored pixels the same crop has side c = round(S·I/R), so
with S = R the paper's crops are plain slices (no resampling) and for S ≠ R each crop is
resampled to I with antialiased bilinear weights (`jax.image.scale_and_translate`).
Because the store keeps only the central square, `crop_region='full'` crops stay inside
that square too: identical to `center_square` for square sources (the embedded set), the
paper's protocol for ImageNet.

Randomness: the key of example i at step k is fold_in(fold_in(fold_in(key(seed), TAG), k), i)
over the global batch, so a run resumed at step k draws exactly the crops, flips and
lighting an uninterrupted run would have drawn.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

# Mixed into the run's key so augmentation never shares random bits with dropout.
_AUG_TAG = 0x0A06
_INCEPTION_TRIES = 10  # as TF's sample_distorted_bounding_box(max_attempts=10)

Window = jax.Array  # int32 [4]: top, left, height, width (stored pixels)


# ----------------------------------------------------------------------------- geometry


def crop_side(stored: int, image_size: int, resize_size: int) -> int:
  """Side in stored pixels of an image_size crop of the resize_size-short-side image."""
  return int(min(stored, max(1, round(stored * image_size / resize_size))))


def random_window(key: jax.Array, stored: int, side: int) -> Window:
  """A side×side square placed uniformly in the stored square (every offset equally likely)."""
  ky, kx = jax.random.split(key)
  top = jax.random.randint(ky, (), 0, stored - side + 1)
  left = jax.random.randint(kx, (), 0, stored - side + 1)
  return jnp.stack([top, left, jnp.int32(side), jnp.int32(side)]).astype(jnp.int32)


def center_window(stored: int, side: int) -> Window:
  off = (stored - side) // 2
  return jnp.array([off, off, side, side], jnp.int32)


def inception_window(key: jax.Array, stored: int, min_area: float,
                     aspect_range: tuple[float, float]) -> Window:
  """Random-resized crop (Szegedy et al. 2015): area fraction in [min_area, 1], aspect (w/h) in
  `aspect_range`, both uniform, up to 10 tries; the whole image when no try fits (as in TF)."""
  ka, kr, ky, kx = jax.random.split(key, 4)
  n = _INCEPTION_TRIES
  area = jax.random.uniform(ka, (n,), minval=min_area, maxval=1.0) * stored * stored
  ratio = jax.random.uniform(kr, (n,), minval=aspect_range[0], maxval=aspect_range[1])
  w = jnp.round(jnp.sqrt(area * ratio)).astype(jnp.int32)
  h = jnp.round(jnp.sqrt(area / ratio)).astype(jnp.int32)
  ok = (w >= 1) & (h >= 1) & (w <= stored) & (h <= stored)
  first = jnp.argmax(ok)
  found = ok.any()
  h = jnp.where(found, h[first], stored)
  w = jnp.where(found, w[first], stored)
  top = jnp.floor(jax.random.uniform(ky, ()) * (stored - h + 1)).astype(jnp.int32)
  left = jnp.floor(jax.random.uniform(kx, ()) * (stored - w + 1)).astype(jnp.int32)
  return jnp.stack([top, left, h, w]).astype(jnp.int32)


def crop(image: jax.Array, window: Window, out: int, fixed_side: int | None = None) -> jax.Array:
  """The window of one [S, S, 3] image as float32 [out, out, 3].

  With `fixed_side == out` the window is a plain slice; otherwise it is resampled with
  antialiased bilinear weights, like the streaming path's resize.
  """
  if fixed_side == out:
    return jax.lax.dynamic_slice(image, (window[0], window[1], 0), (out, out, 3)).astype(jnp.float32)
  hw = window[2:4].astype(jnp.float32)
  scale = out / hw
  translation = -window[:2].astype(jnp.float32) * scale
  return jax.image.scale_and_translate(image.astype(jnp.float32), (out, out, 3), (0, 1), scale,
                                       translation, method="linear", antialias=True)


# ----------------------------------------------------------------------------- pixel ops


def flip(key: jax.Array, image: jax.Array) -> jax.Array:
  """Mirrors left-right with probability 1/2."""
  return jnp.where(jax.random.bernoulli(key), image[:, ::-1], image)


def lighting_shift(key: jax.Array, sigma: float, eigval, eigvec) -> jax.Array:
  """Fancy-PCA RGB offset on the 0..255 scale: 255 · eigvec @ (alpha · eigval), alpha ~ N(0, σ²)."""
  alpha = sigma * jax.random.normal(key, (3,), jnp.float32)
  return 255.0 * jnp.asarray(eigvec, jnp.float32) @ (alpha * jnp.asarray(eigval, jnp.float32))


def normalize(image: jax.Array, mean_rgb, std_rgb) -> jax.Array:
  return (image - jnp.asarray(mean_rgb, jnp.float32)) / jnp.asarray(std_rgb, jnp.float32)


# ----------------------------------------------------------------------------- recipes


def _geometry(input_cfg, stored: int) -> tuple[int, int, int]:
  size, resize = int(input_cfg.image_size), int(input_cfg.resize_size)
  return size, resize, crop_side(stored, size, resize)


def example_keys(base_key: jax.Array, step: jax.Array, batch: int) -> jax.Array:
  """Keys of the `batch` examples of global step `step`; a pure function of (seed, step, i)."""
  step_key = jax.random.fold_in(jax.random.fold_in(base_key, _AUG_TAG), step)
  return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(jnp.arange(batch))


def train_fn(input_cfg) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """f(key, uint8 [S, S, 3]) → float32 [I, I, 3]: crop, flip, PCA lighting, normalise."""
  mode = input_cfg.train_crop
  if mode not in ("random", "inception", "center"):
    raise ValueError(f"config.input.train_crop={mode!r}: choose random, inception or center.")
  do_flip, sigma = bool(input_cfg.flip), float(input_cfg.pca_lighting)
  eigval, eigvec = tuple(input_cfg.pca_eigval), tuple(map(tuple, input_cfg.pca_eigvec))
  mean, std = tuple(input_cfg.mean_rgb), tuple(input_cfg.std_rgb)
  min_area = float(input_cfg.get("inception_min_area", 0.08))
  aspect = tuple(input_cfg.get("inception_aspect_range", (3 / 4, 4 / 3)))

  def fn(key: jax.Array, image: jax.Array) -> jax.Array:
    stored = image.shape[0]
    size, _, side = _geometry(input_cfg, stored)
    k_crop, k_flip, k_light = jax.random.split(key, 3)
    if mode == "random":
      out = crop(image, random_window(k_crop, stored, side), size, side)
    elif mode == "inception":
      out = crop(image, inception_window(k_crop, stored, min_area, aspect), size)
    else:
      out = crop(image, center_window(stored, side), size, side)
    if do_flip:
      out = flip(k_flip, out)
    if sigma > 0:
      out = out + lighting_shift(k_light, sigma, eigval, eigvec)
    return normalize(out, mean, std)

  return fn


def train_batch(input_cfg) -> Callable[[dict, jax.Array, jax.Array], dict]:
  """f(batch, base_key, step) → batch with float32 images; uint8 batches only (others pass)."""
  per_example = train_fn(input_cfg)

  def fn(batch: dict, base_key: jax.Array, step: jax.Array) -> dict:
    images = batch["image"]
    if images.dtype != jnp.uint8:
      return batch
    keys = example_keys(base_key, step, images.shape[0])
    return {**batch, "image": jax.vmap(per_example)(keys, images)}

  return fn


def eval_views(input_cfg, protocol: str, images: jax.Array) -> jax.Array:
  """uint8 [B, S, S, 3] → float32 [B, V, I, I, 3]: `center` (V=1) or `10crop` (V=10).

  10crop (Krizhevsky et al. 2012, Sec. 4.1): the four corner crops and the centre crop of the
  stored square, plus their mirror images.
  """
  stored = images.shape[1]
  size, _, side = _geometry(input_cfg, stored)
  if protocol == "center":
    windows = [center_window(stored, side)]
  elif protocol == "10crop":
    far = stored - side
    offsets = [(0, 0), (0, far), (far, 0), (far, far), (far // 2, far // 2)]
    windows = [jnp.array([t, l, side, side], jnp.int32) for t, l in offsets]
  else:
    raise ValueError(f"Protocol {protocol!r} is not computed from a store (center and 10crop are).")

  def views(image):
    out = jnp.stack([crop(image, w, size, side) for w in windows])
    if protocol == "10crop":
      out = jnp.concatenate([out, out[:, :, ::-1]], axis=0)
    return normalize(out, input_cfg.mean_rgb, input_cfg.std_rgb)

  return jax.vmap(views)(images)


def eval_batch(input_cfg, batch: dict) -> dict:
  """The centre view of a uint8 eval batch ([B, I, I, 3] float32); other batches pass unchanged."""
  if batch["image"].dtype != jnp.uint8:
    return batch
  return {**batch, "image": eval_views(input_cfg, "center", batch["image"])[:, 0]}


def store_protocols() -> tuple[str, ...]:
  """Evaluation protocols computed from the stored squares; the others stream full-size images."""
  return ("center", "10crop")


def lighting_covariance(sigma: float, eigval, eigvec) -> np.ndarray:
  """The covariance of `lighting_shift` the config implies: 255² σ² V diag(λ²) Vᵀ."""
  v, lam = np.asarray(eigvec, np.float64), np.asarray(eigval, np.float64)
  return (255.0 * sigma) ** 2 * v @ np.diag(lam ** 2) @ v.T
