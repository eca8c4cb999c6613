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
The store keeps only the central square, so random crops lie inside it: the
`crop_region='center_square'` geometry (the paper's protocol for ImageNet). `full` cannot be
honoured here and is refused when the config is checked (configs/validate.py). Inception crops
are drawn over the stored square (the whole image for square sources).

Settings: `augmentation.TrainAugment`, the one reading of the config's augmentation fields.

Randomness: the key of example i at step k is fold_in(fold_in(fold_in(key(seed), TAG), k), i)
over the global batch, so a run resumed at step k draws exactly the crops, flips and
lighting an uninterrupted run would have drawn.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from alexnet_jax.data.augmentation import TrainAugment

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
  """Random-resized crop (Szegedy et al. 2015), drawn as the stream path's
  `tf.image.sample_distorted_bounding_box` draws it, so both paths crop alike: per try an aspect
  ratio r (w/h) uniform in `aspect_range`, then an integer height uniform between the heights whose
  r-shaped box has area fraction `min_area` and 1 (capped to fit), width round(h·r), one-pixel fixes
  for rounding; up to 10 tries, the whole image when none fits. The offset is uniform over
  [0, S − side − 1] (TF's range; 0 when the side is S)."""
  ka, kh, ky, kx = jax.random.split(key, 4)
  n, total = _INCEPTION_TRIES, float(stored * stored)
  low, high = min_area * total, total
  ratio = jax.random.uniform(ka, (n,), minval=aspect_range[0], maxval=aspect_range[1])

  def width_of(h):
    return jnp.round(h * ratio).astype(jnp.int32)

  h_min = jnp.round(jnp.sqrt(low / ratio)).astype(jnp.int32)
  h_max = jnp.round(jnp.sqrt(high / ratio)).astype(jnp.int32)
  fit = jnp.floor((stored + 0.5 - 1e-7) / ratio).astype(jnp.int32)  # the tallest box whose width fits
  fit = jnp.where(width_of(fit) > stored, fit - 1, fit)
  h_max = jnp.minimum(jnp.where(width_of(h_max) > stored, fit, h_max), stored)
  h_min = jnp.minimum(h_min, h_max)
  h = h_min + jnp.floor(jax.random.uniform(kh, (n,)) * (h_max - h_min + 1)).astype(jnp.int32)
  h = jnp.where(h * width_of(h) < low, h + 1, h)
  h = jnp.where(h * width_of(h) > high, h - 1, h)
  w = width_of(h)
  area = h * w
  ok = (area >= low) & (area <= high) & (w >= 1) & (h >= 1) & (w <= stored) & (h <= stored)
  first = jnp.argmax(ok)
  found = ok.any()
  h = jnp.where(found, h[first], stored)
  w = jnp.where(found, w[first], stored)
  top = jnp.floor(jax.random.uniform(ky, ()) * (stored - h)).astype(jnp.int32)
  left = jnp.floor(jax.random.uniform(kx, ()) * (stored - w)).astype(jnp.int32)
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


def _geometry(input_cfg, stored: int) -> tuple[int, int]:
  """(crop fed to the network, crop side in stored pixels); `input_cfg` a config.input or a TrainAugment."""
  size, resize = int(input_cfg.image_size), int(input_cfg.resize_size)
  return size, crop_side(stored, size, resize)


def example_keys(base_key: jax.Array, step: jax.Array, batch: int) -> jax.Array:
  """Keys of the `batch` examples of global step `step`; a pure function of (seed, step, i)."""
  step_key = jax.random.fold_in(jax.random.fold_in(base_key, _AUG_TAG), step)
  return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(jnp.arange(batch))


def train_fn(input_cfg) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """f(key, uint8 [S, S, 3]) → float32 [I, I, 3]: crop, flip, PCA lighting, normalise."""
  aug = TrainAugment.from_config(input_cfg)

  def fn(key: jax.Array, image: jax.Array) -> jax.Array:
    stored = image.shape[0]
    size, side = _geometry(aug, stored)
    k_crop, k_flip, k_light = jax.random.split(key, 3)
    if aug.crop == "random":
      out = crop(image, random_window(k_crop, stored, side), size, side)
    elif aug.crop == "inception":
      out = crop(image, inception_window(k_crop, stored, aug.min_area, aug.aspect_range), size)
    else:
      out = crop(image, center_window(stored, side), size, side)
    if aug.flip:
      out = flip(k_flip, out)
    if aug.lighting:
      out = out + lighting_shift(k_light, aug.pca_sigma, aug.pca_eigval, aug.pca_eigvec)
    return normalize(out, aug.mean_rgb, aug.std_rgb)

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
  size, side = _geometry(input_cfg, stored)
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
