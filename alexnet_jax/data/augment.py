"""Image decoding and augmentation as pure TensorFlow functions.

Every random op takes an explicit stateless seed (a shape-[2] integer tensor), so an
example's augmentation is a pure function of the seed the pipeline derives from
(run seed, epoch, example position). That is what makes a resumed run see exactly the
images an uninterrupted run would have seen.

Pixel values stay on the 0..255 scale (float32 after decoding) until `normalize`, which
is also where the paper's mean subtraction happens; PCA lighting is applied on that
same scale, before normalisation.

Crops are expressed as *windows in the original image* (top, left, height, width), so a
JPEG can be decoded only inside the window (`tf.image.decode_and_crop_jpeg`), which is
much cheaper than decoding a full ImageNet photo and then throwing most of it away.

Settings: `augmentation.TrainAugment`, the one reading of the config's augmentation fields
(checked once, by configs/validate.py, before anything runs).
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from alexnet_jax.data.augmentation import TrainAugment

Window = tf.Tensor  # int32 [4]: top, left, height, width


# ----------------------------------------------------------------------------- decoding


def _to_rgb(image: tf.Tensor) -> tf.Tensor:
  """Forces 3 channels: grey is repeated, an alpha channel is dropped."""
  channels = image.shape[-1]
  if channels == 3:
    return image
  if channels == 1:
    return tf.image.grayscale_to_rgb(image)
  if channels == 4:
    return image[..., :3]
  # Unknown static channel count (e.g. a generic decode): decide at run time.
  image = tf.cond(tf.shape(image)[-1] == 1, lambda: tf.tile(image, [1, 1, 3]),
                  lambda: image[..., :3])
  return tf.ensure_shape(image, [None, None, 3])


def ensure_rgb(image: tf.Tensor) -> tf.Tensor:
  """Public form of the channel fix for already-decoded images (e.g. TFDS-decoded)."""
  return _to_rgb(image)


def decode_rgb(image_bytes: tf.Tensor) -> tf.Tensor:
  """Decodes JPEG/PNG/GIF/BMP bytes to uint8 [H, W, 3] RGB, whatever the file's extension.

  Grayscale and CMYK JPEGs and PNGs saved under a .JPEG name all end up as RGB:
  `decode_image` sniffs the format from the bytes, not from the name.
  """
  image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
  return tf.ensure_shape(image, [None, None, 3])


def image_shape(image_bytes: tf.Tensor) -> tf.Tensor:
  """Height and width (int32 [2]) of encoded bytes; reads only the header for JPEGs."""
  return tf.cond(
      tf.io.is_jpeg(image_bytes),
      lambda: tf.image.extract_jpeg_shape(image_bytes)[:2],
      lambda: tf.shape(decode_rgb(image_bytes))[:2])


def decode_window(image_bytes: tf.Tensor, window: Window) -> tf.Tensor:
  """Decodes only `window` of the image: a partial decode for JPEGs, a full one otherwise."""
  def jpeg() -> tf.Tensor:
    return tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)

  def other() -> tf.Tensor:
    image = decode_rgb(image_bytes)
    return image[window[0]:window[0] + window[2], window[1]:window[1] + window[3]]

  image = tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
  return tf.ensure_shape(image, [None, None, 3])


# ----------------------------------------------------------------------------- windows


def center_crop_window(shape: tf.Tensor, image_size: int, resize_size: int) -> Window:
  """The window of the original image that "resize short side, then centre crop" keeps.

  Resizing the short side to `resize_size` and taking the central `image_size` square
  keeps a square of side short·image_size/resize_size of the original, centred.
  """
  h, w = shape[0], shape[1]
  short = tf.minimum(h, w)
  side = tf.cast(tf.round(tf.cast(short, tf.float32) * image_size / resize_size), tf.int32)
  side = tf.clip_by_value(side, 1, short)
  top = (h - side) // 2
  left = (w - side) // 2
  return tf.stack([top, left, side, side])


def random_crop_window(shape: tf.Tensor, image_size: int, resize_size: int,
                       seed: tf.Tensor, region: str) -> Window:
  """A uniformly placed `image_size` square of the short-side-resized image.

  `region='center_square'` is the paper's geometry (Krizhevsky 2012, Sec. 2 and 4.1): the
  patch lies inside the central resize_size × resize_size square (the central short×short
  square of the original); `region='full'` lets it lie anywhere in the resized image.
  Returned as the equivalent square in original pixels (side short·image_size/resize_size).
  """
  h, w = shape[0], shape[1]
  short = tf.minimum(h, w)
  side = tf.cast(tf.round(tf.cast(short, tf.float32) * image_size / resize_size), tf.int32)
  side = tf.clip_by_value(side, 1, short)
  if region == "center_square":
    top0, left0, span_h, span_w = (h - short) // 2, (w - short) // 2, short, short
  else:
    top0, left0, span_h, span_w = 0, 0, h, w
  offsets = tf.random.stateless_uniform([2], seed, minval=0, maxval=2**30, dtype=tf.int32)
  top = top0 + offsets[0] % (span_h - side + 1)
  left = left0 + offsets[1] % (span_w - side + 1)
  return tf.stack([top, left, side, side])


def inception_crop_window(shape: tf.Tensor, min_area: float, seed: tf.Tensor,
                          aspect_range: tuple[float, float]) -> Window:
  """Random-resized crop (Szegedy et al. 2015): area in [min_area, 1], aspect in `aspect_range`.

  When no valid box is found in 10 tries the whole image is used (TF's fallback).
  """
  bbox = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.concat([tf.cast(shape[:2], tf.int32), [3]], 0), bounding_boxes=bbox, seed=seed, min_object_covered=0.0,
      aspect_ratio_range=aspect_range, area_range=(min_area, 1.0), max_attempts=10,
      use_image_if_no_bounding_boxes=True)
  return tf.stack([begin[0], begin[1], size[0], size[1]])


# ----------------------------------------------------------------------------- pixel ops


def resize(image: tf.Tensor, size: Sequence[int] | tf.Tensor) -> tf.Tensor:
  """Bilinear resize with antialiasing (like PIL), float32 output on the input's scale."""
  return tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)


def resize_short_side(image: tf.Tensor, short_size: int) -> tf.Tensor:
  """Resizes so the shorter side is `short_size`, keeping the aspect ratio."""
  hw = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = short_size / tf.reduce_min(hw)
  new_hw = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), short_size)
  new_hw = tf.where(hw == tf.reduce_min(hw), short_size, new_hw)
  return resize(image, new_hw)


def center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
  """The central size×size square (the image must be at least that large)."""
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  top, left = (h - size) // 2, (w - size) // 2
  return image[top:top + size, left:left + size]


def flip(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Mirrors left-right with probability 1/2."""
  return tf.image.stateless_random_flip_left_right(image, seed)


def pca_lighting_shift(seed: tf.Tensor, sigma: float, eigval: Sequence[float],
                       eigvec: Sequence[Sequence[float]]) -> tf.Tensor:
  """The per-image RGB offset of "fancy PCA" (Krizhevsky 2012, Sec. 4.1), 0..255 scale.

  shift = 255 · eigvec @ (alpha · eigval) with alpha ~ N(0, sigma²) per component; the
  eigen-decomposition is of the 0..1-scaled pixel covariance, hence the 255.
  """
  alpha = tf.random.stateless_normal([3], seed, stddev=sigma, dtype=tf.float32)
  vec = tf.constant(eigvec, tf.float32)
  val = tf.constant(eigval, tf.float32)
  return 255.0 * tf.linalg.matvec(vec, alpha * val)


def pca_lighting(image: tf.Tensor, seed: tf.Tensor, sigma: float, eigval: Sequence[float],
                 eigvec: Sequence[Sequence[float]]) -> tf.Tensor:
  """Adds the same random RGB offset to every pixel (no clipping, as in the paper)."""
  return tf.cast(image, tf.float32) + pca_lighting_shift(seed, sigma, eigval, eigvec)


def normalize(image: tf.Tensor, mean_rgb: Sequence[float], std_rgb: Sequence[float]) -> tf.Tensor:
  """(x − mean) / std per channel, on the 0..255 scale; float32 out."""
  mean = tf.constant(mean_rgb, tf.float32)
  std = tf.constant(std_rgb, tf.float32)
  return (tf.cast(image, tf.float32) - mean) / std


# ----------------------------------------------------------------------------- recipes


def train_preprocess(input_cfg) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
  """Returns f(image_bytes, seed) -> float32 [I, I, 3]: crop, flip, lighting, normalise."""
  aug = TrainAugment.from_config(input_cfg)
  size = aug.image_size

  def fn(image_bytes: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    crop_seed, flip_seed, light_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    shape = image_shape(image_bytes)
    if aug.crop == "random":
      window = random_crop_window(shape, size, aug.resize_size, crop_seed, aug.region)
    elif aug.crop == "inception":
      window = inception_crop_window(shape, aug.min_area, crop_seed, aug.aspect_range)
    else:
      window = center_crop_window(shape, size, aug.resize_size)
    image = resize(decode_window(image_bytes, window), [size, size])
    if aug.flip:
      image = flip(image, flip_seed)
    if aug.lighting:
      image = pca_lighting(image, light_seed, aug.pca_sigma, aug.pca_eigval, aug.pca_eigvec)
    return tf.ensure_shape(normalize(image, aug.mean_rgb, aug.std_rgb), [size, size, 3])

  return fn


def eval_preprocess(input_cfg) -> Callable[[tf.Tensor], tf.Tensor]:
  """Returns f(uint8 [H, W, 3]) -> float32 [I, I, 3]: resize short side, centre crop, normalise."""
  size, resize_size = int(input_cfg.image_size), int(input_cfg.resize_size)
  mean, std = tuple(input_cfg.mean_rgb), tuple(input_cfg.std_rgb)

  def fn(image: tf.Tensor) -> tf.Tensor:
    image = center_crop(resize_short_side(_to_rgb(image), resize_size), size)
    return tf.ensure_shape(normalize(image, mean, std), [size, size, 3])

  return fn
