"""Augmentation ops: shapes, ranges, geometry, lighting statistics, stateless determinism."""

import io

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alexnet_jax.data import augment
from alexnet_jax.configs import common


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


def test_random_crop_window_inside_and_varies():
  shape = tf.constant([60, 90])
  windows = np.stack([augment.random_crop_window(shape, 32, 40, _seed(i)).numpy() for i in range(50)])
  side = round(60 * 32 / 40)
  assert (windows[:, 2] == side).all() and (windows[:, 3] == side).all()
  assert (windows[:, 0] >= 0).all() and (windows[:, 0] + side <= 60).all()
  assert (windows[:, 1] >= 0).all() and (windows[:, 1] + side <= 90).all()
  assert len({tuple(w) for w in windows}) > 10


def test_inception_crop_bounds():
  h, w = 120, 160
  for i in range(40):
    top, left, ch, cw = augment.inception_crop_window(tf.constant([h, w]), 0.08, _seed(i)).numpy()
    assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w
    area = ch * cw / (h * w)
    full = (ch, cw) == (h, w)
    assert full or (0.08 - 0.01 <= area <= 1.0 and 3 / 4 - 0.05 <= cw / ch <= 4 / 3 + 0.05)


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


def test_bad_input_config_errors():
  with pytest.raises(ValueError, match="resize_size"):
    augment.train_preprocess(_input_cfg(resize_size=16))
  with pytest.raises(ValueError, match="train_crop"):
    augment.train_preprocess(_input_cfg(train_crop="diagonal"))
