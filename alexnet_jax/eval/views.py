"""Test-time protocols: crop geometry and the view makers (one image → V views of S×S pixels).

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
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Sequence


from alexnet_jax.errors import ConfigError

PROTOCOLS = ("center", "10crop", "multiscale", "144crop")
REFERENCE_CROP = 224  # the crop size the papers' scales refer to


# Crop geometry. Offsets are plain arithmetic, so the same functions serve Python ints (tests) and int32
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


def check_names(names: Iterable[str], known: Sequence[str], what: str, where: str) -> tuple[str, ...]:
  names = tuple(names)
  bad = [n for n in names if n not in known]
  if bad or not names:
    raise ConfigError(f"Unknown {what} {bad or '(none given)'}; choose from {', '.join(known)} ({where}).")
  return names


def check_protocols(protocols: Iterable[str]) -> tuple[str, ...]:
  return check_names(protocols, PROTOCOLS, "evaluation protocol(s)", "config.eval.protocols or --protocols")


# View makers: tf functions, run inside tf.data.


def _crop(image, top, left, size: int):
  return image[top:top + size, left:left + size]


def _with_mirrors(views: list) -> Any:
  """[views..., mirrored views...] stacked to [2·len(views), S, S, 3]."""
  import tensorflow as tf
  stacked = tf.stack(views)
  return tf.concat([stacked, tf.reverse(stacked, axis=[2])], axis=0)


def _five_crops(square, size: int) -> list:
  import tensorflow as tf
  shape = tf.shape(square)
  return [_crop(square, t, l, size) for t, l in five_crop_offsets(shape[0], shape[1], size)]


def ten_crop_views(image, size: int, resize_size: int):
  """AlexNet's 10 views of a float image: 5 crops of the central resize_size square + mirrors."""
  from alexnet_jax.data import augment
  square = augment.center_crop(augment.resize_short_side(image, resize_size), resize_size)
  return _with_mirrors(_five_crops(square, size))


def multiscale_views(image, size: int, scales: Sequence[int]):
  """VGG-style multi-scale crops: 10crop's views at each short side Q in `scales`."""
  import tensorflow as tf
  return tf.concat([ten_crop_views(image, size, q) for q in scales], axis=0)


def googlenet_views(image, size: int, scales: Sequence[int]):
  """GoogLeNet's 144 views (for 4 scales): scales × 3 squares × (5 crops + whole square) × 2."""
  import tensorflow as tf
  from alexnet_jax.data import augment
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
  import tensorflow as tf
  from alexnet_jax.data import augment
  from alexnet_jax.data import input_pipeline
  check_protocols([protocol])
  size = int(config.input.image_size)
  resize_size = int(config.input.resize_size)
  n = num_views(protocol, config.eval)
  if protocol == "center":
    center = input_pipeline.default_eval_preprocess(config)
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
    return tf.ensure_shape(input_pipeline.normalize(views, config), [n, size, size, 3])

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
