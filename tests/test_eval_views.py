"""Test-time protocols (alexnet_jax/eval/views.py): crop geometry, view makers, views per batch."""

import numpy as np
import pytest
import tensorflow as tf

from alexnet_jax.eval import views as eval_views
from tests.conftest import eval_config


def _ramp(h: int, w: int) -> np.ndarray:
  """uint8 [h, w, 3] with a distinct value per pixel (row·w + col), so crops can be located."""
  v = (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)
  return np.repeat(v[:, :, None], 3, axis=2)


def test_five_crop_offsets_are_corners_then_centre():
  assert eval_views.five_crop_offsets(8, 8, 5) == [(0, 0), (0, 3), (3, 0), (3, 3), (1, 1)]
  assert eval_views.five_crop_offsets(10, 14, 10) == [(0, 0), (0, 4), (0, 0), (0, 4), (0, 2)]


def test_three_squares_run_along_the_long_side():
  assert eval_views.three_square_offsets(10, 16, 10) == [(0, 0), (0, 3), (0, 6)]
  assert eval_views.three_square_offsets(16, 10, 10) == [(0, 0), (3, 0), (6, 0)]


def test_ten_crop_views_are_the_corners_centre_and_their_mirrors():
  img = _ramp(12, 12).astype(np.float32)
  views = eval_views.ten_crop_views(tf.constant(img), size=7, resize_size=12).numpy()
  assert views.shape == (10, 7, 7, 3)
  expect = [img[0:7, 0:7], img[0:7, 5:12], img[5:12, 0:7], img[5:12, 5:12], img[2:9, 2:9]]
  for i, e in enumerate(expect):
    np.testing.assert_allclose(views[i], e, atol=1e-3, err_msg=f"crop {i}")
    np.testing.assert_allclose(views[5 + i], e[:, ::-1], atol=1e-3, err_msg=f"mirror {i}")


def test_ten_crop_uses_the_central_square_of_a_wide_image():
  img = _ramp(12, 20).astype(np.float32)  # short side already 12: no resampling
  views = eval_views.ten_crop_views(tf.constant(img), size=7, resize_size=12).numpy()
  square = img[:, 4:16]
  np.testing.assert_allclose(views[0], square[0:7, 0:7], atol=1e-3)
  np.testing.assert_allclose(views[3], square[5:12, 5:12], atol=1e-3)


@pytest.mark.parametrize("protocol,views", [("center", 1), ("10crop", 10), ("multiscale", 30), ("144crop", 144)])
def test_protocol_view_shapes(protocol, views):
  c = eval_config()
  assert eval_views.num_views(protocol, c.eval) == views
  fn = eval_views.make_preprocess(protocol, c)
  for shape in [(40, 50, 3), (61, 33, 3), (30, 30, 1)]:  # landscape, portrait, grey and smaller than the crop
    out = fn(tf.zeros(shape, tf.uint8))
    assert tuple(out.shape) == (views, 32, 32, 3), (protocol, shape)
    assert out.dtype == tf.float32


def test_multiscale_scales_follow_the_crop_size():
  assert eval_views.scaled_sizes((256, 384, 512), 224) == (256, 384, 512)
  assert eval_views.scaled_sizes((256, 384, 512), 32) == (37, 55, 73)
  with pytest.raises(ValueError, match="≥ 224"):
    eval_views.scaled_sizes((200, 256), 224)


def test_multiscale_views_are_normalised_like_training():
  c = eval_config()
  out = eval_views.make_preprocess("multiscale", c)(tf.fill([40, 40, 3], tf.constant(200, tf.uint8))).numpy()
  expect = (200.0 - np.asarray(c.input.mean_rgb)) / np.asarray(c.input.std_rgb)
  np.testing.assert_allclose(out, np.broadcast_to(expect, out.shape), atol=1e-2)


def test_unknown_protocol_is_a_clear_error():
  with pytest.raises(ValueError, match="10crop"):
    eval_views.check_protocols(["ten_crop"])


def test_images_per_batch():
  c = eval_config()
  c.eval_batch_size = 250
  assert eval_views.images_per_batch(c, "10crop") == 25
  assert eval_views.images_per_batch(c, "10crop", multiple=4) == 24  # rounded down to a multiple of the devices
  assert eval_views.images_per_batch(c, "144crop", multiple=2) == 2
  c.eval.batch_size = 3
  with pytest.raises(ValueError, match="multiple of 2"):
    eval_views.images_per_batch(c, "center", multiple=2)
