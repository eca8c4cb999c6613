"""Augmentation ops: shapes, ranges, geometry, lighting statistics, stateless determinism."""

import dataclasses
import io

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alexnet_jax.configs import common, validate
from alexnet_jax.data import augment, augmentation


def _jpeg(arr: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format="JPEG", quality=95)
  return buf.getvalue()


def _png(arr: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format="PNG")
  return buf.getvalue()


def _input_cfg(**kw) -> ml_collections.ConfigDict:
  cfg = common.base_config().input
  cfg.image_size, cfg.resize_size = 32, 40
  cfg.update(kw)
  return cfg


def _seed(i: int) -> tf.Tensor:
  return tf.constant([7, i], tf.int64)


def test_center_crop_window_coordinates():
  # 100×200 image, resize short side 100→50, crop 40 → original window side 80, centred.
  w = augment.center_crop_window(tf.constant([100, 200]), 40, 50).numpy()
  np.testing.assert_array_equal(w, [10, 60, 80, 80])
  w = augment.center_crop_window(tf.constant([300, 120]), 224, 256).numpy()
  assert w[2] == w[3] == 105 and w[1] == (120 - 105) // 2 and w[0] == (300 - 105) // 2


def _coordinate_png(h: int, w: int) -> tf.Tensor:
  """A lossless image whose red value is the pixel's row and green value its column."""
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  return tf.constant(_png(np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)))


def _plain_cfg(**kw) -> ml_collections.ConfigDict:
  """No flip, no lighting, identity normalisation: the crop's pixels come out as decoded."""
  return _input_cfg(flip=False, pca_lighting=0.0, mean_rgb=(0.0, 0.0, 0.0), std_rgb=(1.0, 1.0, 1.0), **kw)


def _windows_seen(cfg: ml_collections.ConfigDict, data: tf.Tensor, n: int) -> np.ndarray:
  """[n, 4] (top, bottom, left, right) original-pixel spans read off the crops' own values.

  Resizing interpolates with non-negative weights, so every output value lies within the
  window's coordinates and the extremes lie within a pixel of its edges.
  """
  fn = augment.train_preprocess(cfg)
  out = []
  for i in range(n):
    img = fn(data, _seed(i)).numpy()
    out.append([img[..., 0].min(), img[..., 0].max(), img[..., 1].min(), img[..., 1].max()])
  return np.array(out)


@pytest.mark.parametrize("region", ["center_square", "full"])
def test_random_crop_paper_geometry(region):
  # A 60×150 image; resize_size 40 makes it 40×100, and a 32 crop of that is a 48-pixel square of
  # the original. The central resize_size² square of the resized image is the central 60×60 of
  # the original: columns 45..104.
  h, w, image_size, resize_size = 60, 150, 32, 40
  side = h * image_size / resize_size
  square_left, square_right = (w - h) / 2, (w + h) / 2 - 1
  spans = _windows_seen(_plain_cfg(crop_region=region), _coordinate_png(h, w), 60)
  top, bottom, left, right = spans.T
  # Each crop is a side×side square of the original (up to the one-pixel filter margin).
  np.testing.assert_allclose(bottom - top, side - 1, atol=1.5)
  np.testing.assert_allclose(right - left, side - 1, atol=1.5)
  assert top.min() >= 0 and bottom.max() <= h - 1
  # Offsets cover the whole allowed range along the short side.
  assert top.min() <= 1 and bottom.max() >= h - 2
  if region == "center_square":
    assert left.min() >= square_left - 0.01 and right.max() <= square_right + 0.01
    assert left.min() <= square_left + 1 and right.max() >= square_right - 1
  else:
    assert left.min() <= 5 and right.max() >= w - 6  # reaches both ends of the long side
    assert (left < square_left - 1).any() and (right > square_right + 1).any()
  assert len({tuple(s) for s in np.round(spans[:, [0, 2]])}) > 15


def _inception_windows(cfg: ml_collections.ConfigDict, h: int, w: int, n: int) -> np.ndarray:
  spans = _windows_seen(cfg, _coordinate_png(h, w), n)
  return np.stack([spans[:, 1] - spans[:, 0] + 1, spans[:, 3] - spans[:, 2] + 1], 1), spans


def _check_inception(cfg: ml_collections.ConfigDict, h: int = 120, w: int = 160, n: int = 40) -> None:
  sizes, spans = _inception_windows(cfg, h, w, n)
  ch, cw = sizes.T
  area = ch * cw / (h * w)
  aspect = cw / ch
  lo, hi = cfg.inception_aspect_range
  assert (area >= cfg.inception_min_area - 0.03).all() and (area <= 1.0).all(), area
  # Integer box sides and the one-pixel filter margin loosen the ratio by a few percent.
  assert (aspect >= lo * 0.95).all() and (aspect <= hi * 1.05).all(), aspect
  # Different seeds give different windows, most of them not the whole image.
  assert len({tuple(s) for s in np.round(spans)}) > n // 2
  assert (area < 0.95).sum() > n // 2
  assert area.min() < cfg.inception_min_area + 0.2  # small crops do occur


def test_inception_crop_area_aspect_and_variety():
  _check_inception(_plain_cfg(train_crop="inception", inception_min_area=0.25))


def test_inception_crop_follows_configured_aspect_range():
  _check_inception(_plain_cfg(train_crop="inception", inception_min_area=0.25,
                              inception_aspect_range=(0.9, 1.1)))


def test_flip_is_mirror():
  img = tf.constant(np.random.default_rng(0).integers(0, 255, (8, 6, 3)), tf.float32)
  outs = [augment.flip(img, _seed(i)).numpy() for i in range(20)]
  flipped = [o for o in outs if not np.array_equal(o, img.numpy())]
  assert 0 < len(flipped) < 20
  for o in flipped:
    np.testing.assert_array_equal(o, img.numpy()[:, ::-1])


def test_pca_lighting_covariance():
  sigma = 0.1
  eigval = np.array(common.IMAGENET_PCA_EIGVAL)
  eigvec = np.array(common.IMAGENET_PCA_EIGVEC)
  shifts = np.stack([
      augment.pca_lighting_shift(_seed(i), sigma, eigval, eigvec).numpy() for i in range(3000)])
  expected = 255.0**2 * eigvec @ np.diag((sigma * eigval)**2) @ eigvec.T
  np.testing.assert_allclose(shifts.mean(0), 0.0, atol=0.15 * np.sqrt(np.diag(expected)).max())
  np.testing.assert_allclose(np.cov(shifts.T), expected, rtol=0.12, atol=0.02 * expected.max())
  # Applied as one offset to every pixel.
  out = augment.pca_lighting(tf.zeros([4, 5, 3]), _seed(1), sigma, eigval, eigvec).numpy()
  np.testing.assert_allclose(out, np.broadcast_to(out[0, 0], out.shape))


def test_normalize():
  img = tf.fill([2, 2, 3], 128.0)
  out = augment.normalize(img, (100.0, 128.0, 28.0), (2.0, 1.0, 50.0)).numpy()
  np.testing.assert_allclose(out[0, 0], [14.0, 0.0, 2.0])


def test_decode_converts_to_rgb_and_png_named_jpeg():
  rng = np.random.default_rng(0)
  grey = rng.integers(0, 255, (20, 30), dtype=np.uint8)
  out = augment.decode_rgb(tf.constant(_jpeg(grey))).numpy()
  assert out.shape == (20, 30, 3) and (out[..., 0] == out[..., 1]).all()
  rgba = rng.integers(0, 255, (20, 30, 4), dtype=np.uint8)
  out = augment.decode_rgb(tf.constant(_png(rgba))).numpy()
  np.testing.assert_array_equal(out, rgba[..., :3])


def test_decode_window_matches_full_decode_crop():
  rng = np.random.default_rng(1)
  arr = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
  window = tf.constant([5, 7, 20, 30])
  for data in (_png(arr), _jpeg(arr)):
    full = augment.decode_rgb(tf.constant(data)).numpy()[5:25, 7:37]
    part = augment.decode_window(tf.constant(data), window).numpy()
    assert part.shape == (20, 30, 3)
    assert np.abs(part.astype(int) - full.astype(int)).mean() < 3


@pytest.mark.parametrize("crop", ["random", "inception", "center"])
def test_train_preprocess_shapes_ranges_determinism(crop):
  arr = np.random.default_rng(2).integers(0, 255, (50, 70, 3), dtype=np.uint8)
  data = tf.constant(_jpeg(arr))
  fn = augment.train_preprocess(_input_cfg(train_crop=crop))
  a = fn(data, _seed(3)).numpy()
  b = fn(data, _seed(3)).numpy()
  c = fn(data, _seed(4)).numpy()
  assert a.shape == (32, 32, 3) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  mean = np.array(common.IMAGENET_MEAN_RGB)
  # Normalised values stay within the 0..255 range shifted by mean, widened by lighting.
  assert (a >= -mean.max() - 60).all() and (a <= 255 - mean.min() + 60).all()
  if crop == "center":
    fn_plain = augment.train_preprocess(_input_cfg(train_crop=crop, flip=False, pca_lighting=0.0))
    np.testing.assert_array_equal(fn_plain(data, _seed(3)).numpy(), fn_plain(data, _seed(4)).numpy())
  else:
    assert not np.array_equal(a, c)


def test_eval_preprocess_center():
  arr = np.zeros((40, 80, 3), np.uint8)
  arr[:, 20:60] = 255  # the centre 40 columns are white
  fn = augment.eval_preprocess(_input_cfg(mean_rgb=(0.0, 0.0, 0.0), std_rgb=(255.0,) * 3))
  out = fn(tf.constant(arr)).numpy()
  assert out.shape == (32, 32, 3)
  # resize 40→40 short side, centre crop 32 of the middle 40 white columns → all white.
  np.testing.assert_allclose(out, 1.0, atol=1e-3)


def test_augmentation_is_read_once_from_the_config():
  cfg = _input_cfg(train_crop="inception", inception_min_area=0.3, inception_aspect_range=(0.5, 2.0))
  aug = augmentation.TrainAugment.from_config(cfg)
  assert (aug.crop, aug.min_area, aug.aspect_range, aug.region) == ("inception", 0.3, (0.5, 2.0), "full")
  assert aug.lighting and not augmentation.TrainAugment.from_config(_input_cfg(pca_lighting=0.0)).lighting
  # The description is frozen: a path cannot change what the other reads.
  with pytest.raises(dataclasses.FrozenInstanceError):
    aug.crop = "center"  # type: ignore[misc]


def test_bad_input_configs_are_refused_by_the_one_check():
  c = common.base_config()
  c.dataset = "embedded"
  c.input.resize_size = 16
  c.input.inception_aspect_range = (2.0, 0.5)
  found = validate.problems(c, check_data=False, geometry=False)
  assert any("config.input.resize_size=16" in p for p in found), found
  assert any("config.input.inception_aspect_range" in p for p in found), found
  c.input.train_crop = "diagonal"
  assert any("config.input.train_crop='diagonal'" in p for p in validate.problems(c, check_data=False,
                                                                                 geometry=False))
