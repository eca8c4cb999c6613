"""Device augmentation, exactly: the crop geometry, the inception draw against TensorFlow's rule worked
out by hand, the order and keys of the train recipe, the evaluation views, where a small change would
still pass the distribution tests of test_device_augment.py. Tiny images, eager calls."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.data import device_augment as da

F32 = np.float32


def _input(**fields):
  c = alexnet_config.get_config("smoke").input
  c.unlock()
  c.update(fields)
  return c


def _coordinates(side: int) -> np.ndarray:
  """Red = row, green = column, blue = 7."""
  yy, xx = np.mgrid[0:side, 0:side]
  return np.stack([yy, xx, np.full_like(yy, 7)], -1).astype(np.uint8)


def test_crop_side_in_stored_pixels():
  assert da.crop_side(72, 64, 72) == 64
  assert da.crop_side(72, 32, 36) == 64          # the store twice the resize side
  assert da.crop_side(10, 3, 4) == 8             # round(7.5)
  assert da.crop_side(100, 1, 1000) == 1         # round(0.1) = 0, at least one pixel
  assert da.crop_side(50, 80, 72) == 50          # never more than the store
  assert type(da.crop_side(72, 64, 72)) is int


def test_center_window():
  for stored, side, off in [(72, 64, 4), (73, 64, 4), (10, 4, 3), (8, 8, 0)]:
    w = da.center_window(stored, side)
    assert w.dtype == jnp.int32 and w.tolist() == [off, off, side, side]
  assert da.center_window(4, 7).tolist() == [-2, -2, 7, 7]  # a side over the store: still rounded down
  assert da.center_window(np.uint16(72), np.uint16(64)).dtype == jnp.int32  # whatever the sizes' type


def test_random_window_covers_every_offset_with_separate_draws():
  keys = jax.random.split(jax.random.key(5), 400)
  w = np.asarray(jax.vmap(lambda k: da.random_window(k, 7, 4))(keys))
  assert w.dtype == np.int32 and (w[:, 2:] == 4).all()
  for offsets in (w[:, 0], w[:, 1]):
    assert sorted(set(offsets.tolist())) == [0, 1, 2, 3]
  assert (w[:, 0] != w[:, 1]).mean() > 0.5      # top and left are drawn apart
  ky, kx = jax.random.split(keys[0])
  assert w[0].tolist() == [int(jax.random.randint(ky, (), 0, 4)), int(jax.random.randint(kx, (), 0, 4)), 4, 4]
  assert np.asarray(da.random_window(keys[0], 5, 5)).tolist() == [0, 0, 5, 5]


# The float32 just above 8.5/6: (8 + 0.5 - 1e-7)/r floors to 5 although round(6·r) = 8 fits in 8.
_ABOVE_8_5_OVER_6 = float(np.nextafter(F32(8.5 / 6), F32(2)))


def _inception_reference(key, stored: int, min_area: float, aspect, seen: dict) -> list[int]:
  """TensorFlow's sample_distorted_bounding_box rule, one try at a time, in float32 on the same draws."""
  ka, kh, ky, kx = jax.random.split(key, 4)
  ratios = np.asarray(jax.random.uniform(ka, (10,), minval=aspect[0], maxval=aspect[1]))
  uh = np.asarray(jax.random.uniform(kh, (10,)))
  low, high = F32(min_area * stored * stored), F32(stored * stored)
  for r, u in zip(ratios, uh):
    def width(h, r=r):
      return int(np.round(F32(h) * r))
    h_min = int(np.round(np.sqrt(low / r)))
    h_max = int(np.round(np.sqrt(high / r)))
    if width(h_max) > stored:
      seen["fit"] += 1
      h_max = int(np.floor(F32(stored + 0.5 - 1e-7) / r))
      if width(h_max) > stored:
        h_max -= 1
    h_max = min(h_max, stored)
    h_min = min(h_min, h_max)
    h = h_min + int(np.floor(u * F32(h_max - h_min + 1)))
    if h * width(h) < low:
      seen["up"] += 1
      h += 1
    if h * width(h) > high:
      seen["down"] += 1
      h -= 1
    w = width(h)
    if low <= h * w <= high and 1 <= w <= stored and 1 <= h <= stored:
      break
  else:
    seen["whole"] += 1
    h = w = stored
  top = int(np.floor(np.asarray(jax.random.uniform(ky, ())) * F32(stored - h)))
  left = int(np.floor(np.asarray(jax.random.uniform(kx, ())) * F32(stored - w)))
  return [top, left, h, w]


@pytest.mark.parametrize("stored,min_area,aspect", [(20, 0.08, (3 / 4, 4 / 3)), (9, 0.3, (0.25, 4.0)),
                                                    (6, 0.9, (0.5, 2.0)), (13, 0.5, (1.0, 3.0)),
                                                    (4, 1 / 16, (1.0, 1.0)), (7, 0.02, (2.5, 2.5)),
                                                    (8, 0.01, (_ABOVE_8_5_OVER_6,) * 2)])
def test_inception_window_is_tensorflows_rule_on_the_same_draws(stored, min_area, aspect):
  keys = jax.random.split(jax.random.key(stored), 80)
  got = np.asarray(jax.jit(jax.vmap(lambda k: da.inception_window(k, stored, min_area, aspect)))(keys))
  assert got.dtype == np.int32
  seen = {"fit": 0, "up": 0, "down": 0, "whole": 0}
  want = [_inception_reference(k, stored, min_area, aspect, seen) for k in keys]
  assert got.tolist() == want
  if stored == 9:
    assert seen["fit"] > 0 and seen["up"] > 0
  if stored == 6:
    assert seen["whole"] > 0 and seen["down"] > 0
  if stored == 4:  # boxes of area exactly min_area, one pixel high and wide
    assert [1, 1] in got[:, 2:].tolist()
  if stored == 7:  # 3 · 2.5 = 7.5 rounds to 8: the tallest box that fits is 2 high
    assert seen["fit"] > 0 and sorted(set(got[:, 2].tolist())) == [1, 2]
  if stored == 8:
    assert got[:, 2].max() == 5


def test_inception_window_covers_the_whole_image_when_asked_for():
  w = da.inception_window(jax.random.key(0), 12, 1.0, (1.0, 1.0))
  assert np.asarray(w).tolist() == [0, 0, 12, 12]
  # No 4:1 box covers the whole area: the fallback, exact past float32's integers.
  big = 2 ** 24 + 1
  assert np.asarray(da.inception_window(jax.random.key(0), big, 1.0, (4.0, 4.0))).tolist() == [0, 0, big, big]


def test_crop_is_a_slice_or_an_antialiased_resample():
  image = jnp.asarray(_coordinates(24))
  window = jnp.array([3, 5, 8, 8], jnp.int32)
  sliced = np.asarray(da.crop(image, window, 8, fixed_side=8))
  assert sliced.dtype == np.float32 and sliced.shape == (8, 8, 3)
  np.testing.assert_array_equal(sliced, np.asarray(_coordinates(24)[3:11, 5:13], np.float32))
  # Rows 2:1 (kernel of 4 rows around 3 + 2i + 0.5), columns 1:1: a linear ramp keeps its centre.
  out = np.asarray(da.crop(image, jnp.array([3, 5, 16, 8], jnp.int32), 8))
  i = np.arange(8)
  np.testing.assert_allclose(out[:, :, 0], np.broadcast_to((3 + 2 * i + 0.5)[:, None], (8, 8)), atol=1e-4)
  np.testing.assert_allclose(out[:, :, 1], np.broadcast_to((5 + i)[None, :], (8, 8)), atol=1e-4)
  np.testing.assert_allclose(out[:, :, 2], 7.0, atol=1e-4)
  # A side other than the output's resamples even when the window is given as fixed.
  out = np.asarray(da.crop(image, jnp.array([3, 5, 16, 16], jnp.int32), 8, fixed_side=16))
  np.testing.assert_allclose(out[:, 0, 0], 3 + 2 * i + 0.5, atol=1e-4)
  # The slice starts at channel 0.
  four = jnp.asarray(np.arange(64).reshape(4, 4, 4).astype(np.uint8))
  np.testing.assert_array_equal(np.asarray(da.crop(four, jnp.array([1, 1, 2, 2]), 2, 2)),
                                np.arange(64).reshape(4, 4, 4)[1:3, 1:3, :3].astype(np.float32))


def test_crop_resample_is_antialiased():
  # Halving the rows: antialiased weights 1/8, 3/8, 3/8, 1/8 over four rows (plain bilinear: 1/2, 1/2).
  spike = np.zeros((8, 8, 3), np.uint8)
  spike[3] = 8
  out = np.asarray(da.crop(jnp.asarray(spike), jnp.array([0, 0, 8, 4], jnp.int32), 4))
  assert out.shape == (4, 4, 3)
  np.testing.assert_allclose(out[:, 1, 0], [0.0, 3.0, 1.0, 0.0], atol=1e-5)


def test_crop_reads_numpy_windows_in_float32():
  image = jnp.asarray(_coordinates(24))
  for window in ([3, 5, 9, 7], [1.3, 2.7, 9.0, 9.0]):
    got = np.asarray(da.crop(image, np.array(window), 5))
    np.testing.assert_array_equal(got, np.asarray(da.crop(image, jnp.asarray(window, jnp.float32), 5)))
  # Entries after the fourth are not read.
  np.testing.assert_array_equal(np.asarray(da.crop(image, jnp.array([3, 5, 9, 7, 0]), 5)),
                                np.asarray(da.crop(image, jnp.array([3, 5, 9, 7]), 5)))


def test_flip_lighting_and_normalize_exactly():
  image = jnp.asarray(_coordinates(5), jnp.float32)
  keys = jax.random.split(jax.random.key(9), 40)
  flips = [bool(jax.random.bernoulli(k)) for k in keys]
  assert 0 < sum(flips) < len(flips)
  for k, flipped in zip(keys, flips):
    want = np.asarray(image)[:, ::-1] if flipped else np.asarray(image)
    np.testing.assert_array_equal(np.asarray(da.flip(k, image)), want)
  # Identity eigenvectors: the shift is 255 · σ · z · λ per channel, z the key's three normals.
  z = np.asarray(jax.random.normal(keys[0], (3,), jnp.float32))
  eye = np.eye(3).tolist()
  shift = np.asarray(da.lighting_shift(keys[0], 0.1, (1.0, 2.0, 3.0), eye))
  np.testing.assert_allclose(shift, 255 * 0.1 * z * np.array([1.0, 2.0, 3.0]), rtol=1e-5)
  # A permutation as eigvec: the product eigvec @ (α·λ), not its transpose.
  np.testing.assert_allclose(np.asarray(da.lighting_shift(keys[0], 0.1, (1.0, 2.0, 3.0), [[0, 1, 0], [0, 0, 1], [1, 0, 0]])),
                             255 * 0.1 * np.array([2 * z[1], 3 * z[2], z[0]]), rtol=1e-5)
  norm = np.asarray(da.normalize(jnp.full((1, 1, 3), 100.0), (10.0, 20.0, 30.0), (2.0, 4.0, 5.0)))
  np.testing.assert_allclose(norm[0, 0], [45.0, 20.0, 14.0], rtol=1e-6)
  # In float32 whatever the inputs' types: no uint8 wrap-around, no float16 rounding.
  u8 = np.array([1, 2, 3], np.uint8)
  norm = np.asarray(da.normalize(jnp.zeros((1, 1, 3), jnp.uint8), u8, u8))
  assert norm.dtype == np.float32 and norm[0, 0].tolist() == [-1.0, -1.0, -1.0]
  half = np.array([[0.5774, -0.7071, 0.4082], [0.5774, 0.0, -0.8165], [0.5774, 0.7071, 0.4082]], np.float16)
  np.testing.assert_array_equal(np.asarray(da.lighting_shift(keys[0], 0.1, (1.0, 2.0, 3.0), half)),
                                np.asarray(da.lighting_shift(keys[0], 0.1, (1.0, 2.0, 3.0), half.astype(F32))))
  with pytest.raises(TypeError):
    da.normalize(jnp.zeros((1, 1, 3)), (1.0, 2.0, 3.0), (1j, 1.0, 1.0))
  with pytest.raises(TypeError):
    da.lighting_shift(keys[0], 0.1, (1j, 2.0, 3.0), eye)
  cov = da.lighting_covariance(0.1, (1.0, 2.0, 3.0), eye)
  np.testing.assert_allclose(cov, np.diag([25.5 ** 2, 4 * 25.5 ** 2, 9 * 25.5 ** 2]), rtol=1e-12)
  rot = da.lighting_covariance(0.2, (1.0, 2.0, 3.0), [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
  np.testing.assert_allclose(rot, np.diag([4.0, 9.0, 1.0]) * 51.0 ** 2, rtol=1e-12)
  # float32 eigen arrays: still computed in float64.
  lam32 = np.array([0.2175, 0.0188, 0.0045], F32)
  vec32 = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]], F32)
  v, lam = vec32.astype(np.float64), lam32.astype(np.float64)
  np.testing.assert_allclose(da.lighting_covariance(0.1, lam32, vec32),
                             (255.0 * 0.1) ** 2 * v @ np.diag(lam ** 2) @ v.T, rtol=1e-14, atol=0)


def test_example_keys_are_the_documented_fold_ins():
  base = jax.random.key(3)
  keys = da.example_keys(base, jnp.int32(11), 4)
  step_key = jax.random.fold_in(jax.random.fold_in(base, 0x0A06), 11)
  for i in range(4):
    assert jax.random.key_data(keys[i]).tolist() == jax.random.key_data(jax.random.fold_in(step_key, i)).tolist()
  # A larger batch starts with the same keys: example i's draw does not depend on the batch size.
  more = da.example_keys(base, 11, 6)
  assert jax.random.key_data(more[:4]).tolist() == jax.random.key_data(keys).tolist()


def _by_hand(cfg, key, image):
  """crop → flip → lighting → normalise with the recipe's split of the example key, from the parts."""
  stored, size = image.shape[0], cfg.image_size
  side = da.crop_side(stored, size, cfg.resize_size)
  k_crop, k_flip, k_light = jax.random.split(key, 3)
  if cfg.train_crop == "random":
    out = da.crop(image, da.random_window(k_crop, stored, side), size, side)
  elif cfg.train_crop == "inception":
    out = da.crop(image, da.inception_window(k_crop, stored, cfg.inception_min_area,
                                             tuple(cfg.inception_aspect_range)), size)
  else:
    out = da.crop(image, da.center_window(stored, side), size, side)
  if cfg.flip:
    out = da.flip(k_flip, out)
  if cfg.pca_lighting > 0:
    out = out + da.lighting_shift(k_light, cfg.pca_lighting, cfg.pca_eigval, cfg.pca_eigvec)
  return da.normalize(out, cfg.mean_rgb, cfg.std_rgb)


@pytest.mark.parametrize("fields", [
    dict(train_crop="random", flip=True, pca_lighting=0.1, image_size=6, resize_size=8),
    dict(train_crop="center", flip=True, pca_lighting=0.0, image_size=6, resize_size=8),
    dict(train_crop="inception", flip=False, pca_lighting=0.3, image_size=6, resize_size=8),
    dict(train_crop="random", flip=False, pca_lighting=0.0, image_size=3, resize_size=4),  # resampled: 6 → 3
    dict(train_crop="center", flip=False, pca_lighting=0.0, image_size=3, resize_size=4),
])
def test_train_batch_is_the_recipe_on_each_examples_key(fields):
  cfg = _input(mean_rgb=(100.0, 110.0, 120.0), std_rgb=(50.0, 60.0, 70.0), inception_min_area=0.3, **fields)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8))
  base = jax.random.key(4)
  batch = {"image": images, "label": jnp.arange(3)}
  out = da.train_batch(cfg)(batch, base, jnp.int32(2))
  assert out["label"] is batch["label"] and out["image"].dtype == jnp.float32
  keys = da.example_keys(base, 2, 3)
  want = np.stack([np.asarray(_by_hand(cfg, keys[i], images[i])) for i in range(3)])
  np.testing.assert_allclose(np.asarray(out["image"]), want, rtol=1e-5, atol=1e-5)
  single = da.train_fn(cfg)(keys[1], images[1])
  np.testing.assert_allclose(np.asarray(single), want[1], rtol=1e-5, atol=1e-5)
  floats = {"image": jnp.zeros((2, 6, 6, 3), jnp.float32)}
  assert da.train_batch(cfg)(floats, base, 0) is floats


def test_train_fn_without_flip_or_lighting_is_the_normalised_crop():
  cfg = _input(train_crop="center", flip=False, pca_lighting=0.0, image_size=6, resize_size=8,
               mean_rgb=(1.0, 2.0, 3.0), std_rgb=(2.0, 2.0, 2.0))
  image = jnp.asarray(_coordinates(8))
  want = (_coordinates(8)[1:7, 1:7].astype(np.float32) - np.array([1.0, 2.0, 3.0])) / 2.0
  for key in jax.random.split(jax.random.key(0), 8):
    np.testing.assert_array_equal(np.asarray(da.train_fn(cfg)(key, image)), want.astype(np.float32))
  # The store side is the image's height: a wider image is cut as the square of its rows.
  wide = np.concatenate([_coordinates(8), _coordinates(8)[:, :2]], axis=1)
  np.testing.assert_array_equal(np.asarray(da.train_fn(cfg)(jax.random.key(0), jnp.asarray(wide))), want.astype(np.float32))


@pytest.mark.parametrize("train_crop", ["random", "center"])
def test_train_crop_slices_read_only_the_window(train_crop):
  """NaN everywhere outside the window: a plain slice never reads it (a resample would)."""
  cfg = _input(train_crop=train_crop, flip=False, pca_lighting=0.0, image_size=6, resize_size=8)
  for key in jax.random.split(jax.random.key(1), 4):
    k_crop = jax.random.split(key, 3)[0]
    w = da.random_window(k_crop, 8, 6) if train_crop == "random" else da.center_window(8, 6)
    top, left = int(w[0]), int(w[1])
    image = np.full((8, 8, 3), np.nan, F32)
    image[top:top + 6, left:left + 6] = _coordinates(8)[top:top + 6, left:left + 6]
    out = np.asarray(da.train_fn(cfg)(key, jnp.asarray(image)))
    assert np.isfinite(out).all()


def test_eval_views_normalise_mirror_and_resample():
  cfg = _input(image_size=4, resize_size=5, mean_rgb=(1.0, 2.0, 3.0), std_rgb=(2.0, 4.0, 1.0))
  images = jnp.asarray(np.stack([_coordinates(5), _coordinates(5)[::-1]]))
  mean, std = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 1.0])
  ten = np.asarray(da.eval_views(cfg, "10crop", images))
  assert ten.shape == (2, 10, 4, 4, 3) and ten.dtype == np.float32
  raw = [_coordinates(5)[t:t + 4, l:l + 4] for t, l in [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0)]]
  want = (np.stack(raw + [r[:, ::-1] for r in raw]) - mean) / std
  np.testing.assert_allclose(ten[0], want, rtol=1e-6)
  np.testing.assert_allclose(ten[1, 0], (_coordinates(5)[::-1][:4, :4] - mean) / std, rtol=1e-6)
  center = np.asarray(da.eval_views(cfg, "center", images))
  np.testing.assert_allclose(center[:, 0], ten[:, 4], rtol=1e-6)
  # Store 20 for a 10 resize: the centre crop's side is 16 stored pixels, resampled to 8.
  big = _input(image_size=8, resize_size=10, mean_rgb=(0.0, 0.0, 0.0), std_rgb=(1.0, 1.0, 1.0))
  view = np.asarray(da.eval_views(big, "center", jnp.asarray(_coordinates(20))[None]))[0, 0]
  np.testing.assert_allclose(view[:, 3, 0], 2 + 2 * np.arange(8) + 0.5, atol=1e-4)
  # Store 6 for a 4 crop: the 10crop centre is (1, 1); a slice, blind to NaN outside the window.
  six = _input(image_size=4, resize_size=6, mean_rgb=(0.0, 0.0, 0.0), std_rgb=(1.0, 1.0, 1.0))
  ten = np.asarray(da.eval_views(six, "10crop", jnp.asarray(_coordinates(6))[None]))
  np.testing.assert_array_equal(ten[0, 4], _coordinates(6)[1:5, 1:5].astype(F32))
  np.testing.assert_array_equal(ten[0, 9], _coordinates(6)[1:5, 4:0:-1].astype(F32))
  ringed = np.full((1, 6, 6, 3), np.nan, F32)
  ringed[0, 1:5, 1:5] = _coordinates(6)[1:5, 1:5]
  np.testing.assert_array_equal(np.asarray(da.eval_views(six, "center", jnp.asarray(ringed)))[0, 0], ten[0, 4])
  # The store side is the images' height: a wider image is cut as the square of its rows.
  wide = np.concatenate([_coordinates(5), _coordinates(5)[:, :2]], axis=1)[None]
  np.testing.assert_allclose(np.asarray(da.eval_views(cfg, "center", jnp.asarray(wide)))[0, 0],
                             (_coordinates(5)[:4, :4] - mean) / std, rtol=1e-6)
  with pytest.raises(ValueError, match=r"^Protocol 'multiscale' is not computed from a store \(center and 10crop are\)\.$"):
    da.eval_views(cfg, "multiscale", images)
  assert da.store_protocols() == ("center", "10crop")


def test_eval_batch_is_the_centre_view():
  cfg = _input(image_size=4, resize_size=5, mean_rgb=(1.0, 2.0, 3.0), std_rgb=(2.0, 4.0, 1.0))
  images = jnp.asarray(np.stack([_coordinates(5)] * 2))
  batch = {"image": images, "label": jnp.array([3, 4])}
  out = da.eval_batch(cfg, batch)
  assert out["image"].shape == (2, 4, 4, 3) and out["label"] is batch["label"]
  np.testing.assert_array_equal(np.asarray(out["image"]), np.asarray(da.eval_views(cfg, "center", images))[:, 0])
  floats = {"image": jnp.zeros((1, 4, 4, 3), jnp.float32)}
  assert da.eval_batch(cfg, floats) is floats
