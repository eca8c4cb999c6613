"""Device augmentation (alexnet_jax/data/device_augment.py): crop, flip and lighting distributions,
determinism per key, and the evaluation views, as pure jax functions of (key, image)."""

import jax
import jax.numpy as jnp
import numpy as np

from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.data import device_augment


def _input(**fields):
  """The quick-mode AlexNet input config with `fields` set."""
  c = alexnet_config.get_config("smoke").input
  c.unlock()
  c.update(fields)
  return c


def _coordinates(side: int) -> np.ndarray:
  """A uint8 image whose red channel is the row and green channel the column of each pixel."""
  yy, xx = np.mgrid[0:side, 0:side]
  return np.stack([yy, xx, np.zeros_like(yy)], -1).astype(np.uint8)


def _plain(**fields):
  """No lighting, no normalisation: pixel values stay readable as coordinates."""
  return _input(mean_rgb=(0.0, 0.0, 0.0), std_rgb=(1.0, 1.0, 1.0), pca_lighting=0.0, **fields)


def test_random_crop_offsets_are_uniform_over_the_allowed_range():
  cfg = _plain(image_size=64, resize_size=72, flip=False, train_crop="random")
  fn = jax.jit(jax.vmap(device_augment.train_fn(cfg)))
  n = 4000
  keys = device_augment.example_keys(jax.random.key(0), 7, n)
  image = jnp.broadcast_to(jnp.asarray(_coordinates(72)), (n, 72, 72, 3))
  out = np.asarray(fn(keys, image))
  assert out.shape == (n, 64, 64, 3)
  top, left = out[:, 0, 0, 0], out[:, 0, 0, 1]
  # A crop is a plain slice: every pixel is the stored one at the offset.
  np.testing.assert_array_equal(out[:, 5, 9, 0], top + 5)
  np.testing.assert_array_equal(out[:, 5, 9, 1], left + 9)
  for offsets in (top, left):
    counts = np.bincount(offsets.astype(int), minlength=9)
    assert len(counts) == 9  # offsets 0..8 = 72 − 64, nothing outside
    expected = n / 9
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 26.1, counts  # chi-square, 8 degrees of freedom, p = 0.001


def test_flip_rate_is_one_half_and_the_same_key_gives_the_same_output():
  cfg = _plain(image_size=64, resize_size=64, flip=True, train_crop="center")
  fn = jax.jit(jax.vmap(device_augment.train_fn(cfg)))
  n = 4000
  keys = device_augment.example_keys(jax.random.key(1), 3, n)
  image = jnp.broadcast_to(jnp.asarray(_coordinates(64)), (n, 64, 64, 3))
  out = np.asarray(fn(keys, image))
  flipped = out[:, 0, 0, 1] == 63
  assert abs(flipped.mean() - 0.5) < 0.03
  np.testing.assert_array_equal(out, np.asarray(fn(keys, image)))
  other = device_augment.example_keys(jax.random.key(1), 4, n)
  assert not np.array_equal(out, np.asarray(fn(other, image)))


def test_lighting_noise_covariance_matches_the_eigen_decomposition():
  cfg = _input()
  sigma, eigval, eigvec = 0.1, cfg.pca_eigval, cfg.pca_eigvec
  keys = jax.random.split(jax.random.key(2), 20000)
  shifts = np.asarray(jax.vmap(lambda k: device_augment.lighting_shift(k, sigma, eigval, eigvec))(keys))
  want = device_augment.lighting_covariance(sigma, eigval, eigvec)
  got = np.cov(shifts.T)
  np.testing.assert_allclose(got, want, atol=0.05 * want.max())
  assert abs(shifts.mean(0)).max() < 0.05 * np.sqrt(want.max())


def test_inception_crop_respects_area_and_aspect_ranges():
  keys = jax.random.split(jax.random.key(3), 3000)
  windows = np.asarray(jax.vmap(lambda k: device_augment.inception_window(k, 100, 0.08, (3 / 4, 4 / 3)))(keys))
  top, left, h, w = windows.T
  assert (top >= 0).all() and (left >= 0).all() and (top + h <= 100).all() and (left + w <= 100).all()
  area, aspect = h * w / 100 ** 2, w / h
  assert area.min() >= 0.07 and area.max() <= 1.0
  assert aspect.min() >= 0.72 and aspect.max() <= 1.39
  assert np.quantile(area, 0.5) < 0.7  # spread over the range, not stuck at the fallback
  out = device_augment.train_fn(_input(train_crop="inception", image_size=64, resize_size=72))(
      keys[0], jnp.asarray(_coordinates(72)))
  assert out.shape == (64, 64, 3) and np.isfinite(np.asarray(out)).all()


def test_resampled_crop_when_the_store_is_larger_than_resize_size():
  cfg = _plain(image_size=32, resize_size=36, flip=False, train_crop="center")
  image = jnp.full((72, 72, 3), 100, jnp.uint8)
  out = np.asarray(device_augment.train_fn(cfg)(jax.random.key(0), image))
  assert out.shape == (32, 32, 3)
  np.testing.assert_allclose(out, 100.0, atol=1e-3)


def test_eval_views_center_and_ten_crop():
  cfg = _plain(image_size=64, resize_size=72)
  images = jnp.asarray(_coordinates(72))[None]
  center = np.asarray(device_augment.eval_views(cfg, "center", images))
  assert center.shape == (1, 1, 64, 64, 3) and center[0, 0, 0, 0, 0] == 4 and center[0, 0, 0, 0, 1] == 4
  ten = np.asarray(device_augment.eval_views(cfg, "10crop", images))
  assert ten.shape == (1, 10, 64, 64, 3)
  corners = [(v[0, 0, 0], v[0, 0, 1]) for v in ten[0, :5]]
  assert corners == [(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]
  np.testing.assert_array_equal(ten[0, 5:], ten[0, :5, :, ::-1])
