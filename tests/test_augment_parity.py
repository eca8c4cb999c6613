"""The two input paths augment alike: the same config gives the same distribution of crops
(positions, sizes), flips and lighting on the stream path (augment.py, TensorFlow) and the store
path (device_augment.py, JAX); and `crop_region` is honoured by the store or refused with one line.

Crops are read off a coordinate image (red = row, green = column of each original pixel), so every
crop says where it came from; each distribution is compared with a two-sample Kolmogorov-Smirnov
test over many draws with fixed seeds (p > 1e-3: a real difference of a few pixels is found, seed
noise is not).
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import stats

from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.configs import validate
from alexnet_jax.data import augment, augmentation, device_augment, prepare_folder

from tests.test_config_errors import _assert_one_line_error, _run

N = 1500


def _coordinates(h: int, w: int) -> np.ndarray:
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  return np.stack([rows, cols, np.full_like(rows, 128)], -1).astype(np.uint8)


def _png(image: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG")
  return buf.getvalue()


def _input(**fields):
  """Quick-mode AlexNet's input config (64 crops of 72, random crop, flip) with `fields` set."""
  c = alexnet_config.get_config("smoke").input
  c.unlock()
  c.update(fields)
  return c


def _plain(**fields):
  """No lighting, no normalisation: pixel values stay readable as original coordinates."""
  return _input(pca_lighting=0.0, mean_rgb=(0.0, 0.0, 0.0), std_rgb=(1.0, 1.0, 1.0), **fields)


def _stream(cfg, image: np.ndarray, n: int = N) -> np.ndarray:
  """n stream-path outputs for the encoded `image`, seeds (11, i)."""
  fn = augment.train_preprocess(cfg)
  data = tf.constant(_png(image))
  ds = tf.data.Dataset.range(n).map(lambda i: fn(data, tf.stack([tf.constant(11, tf.int64), i])))
  return np.concatenate([b.numpy() for b in ds.batch(500)])


def _store(cfg, square: np.ndarray, n: int = N) -> np.ndarray:
  """n store-path outputs for the stored uint8 `square`, keys of step 0 of seed 5."""
  keys = device_augment.example_keys(jax.random.key(5), 0, n)
  images = jnp.broadcast_to(jnp.asarray(square), (n, *square.shape))
  return np.asarray(jax.jit(jax.vmap(device_augment.train_fn(cfg)))(keys, images))


def _read(out: np.ndarray) -> dict[str, np.ndarray]:
  """Per crop: top, left, height and width in original pixels, and whether it was mirrored."""
  rows, cols = out[..., 0], out[..., 1]
  top, bottom = rows.min(axis=(1, 2)), rows.max(axis=(1, 2))
  left, right = cols.min(axis=(1, 2)), cols.max(axis=(1, 2))
  mirrored = out[:, 0, 0, 1] > out[:, 0, -1, 1]
  return {"top": top, "left": left, "height": bottom - top, "width": right - left, "mirrored": mirrored}


def _same_distribution(a: dict, b: dict, keys=("top", "left", "height", "width")) -> None:
  for key in keys:
    p = stats.ks_2samp(a[key], b[key]).pvalue
    assert p > 1e-3, (key, p, np.mean(a[key]), np.mean(b[key]))
  # Mirroring: a two-proportion test at the same level.
  flips = [a["mirrored"].mean(), b["mirrored"].mean()]
  pooled = (flips[0] + flips[1]) / 2
  z = (flips[0] - flips[1]) / np.sqrt(2 * pooled * (1 - pooled) / N)
  assert abs(z) < 3.3, flips


@pytest.mark.parametrize("fields", [dict(train_crop="random"),
                                    dict(train_crop="inception", inception_min_area=0.25),
                                    dict(train_crop="inception", inception_min_area=0.5,
                                         inception_aspect_range=(0.6, 1.2))],
                         ids=["random", "inception", "inception-narrow"])
def test_both_paths_draw_the_same_crops_and_flips(fields):
  cfg = _plain(**fields)
  image = _coordinates(72, 72)  # a square source: the store holds the whole of it
  stream, store = _read(_stream(cfg, image)), _read(_store(cfg, image))
  # Random crops are plain slices on both paths, so their sizes read off exactly; resized
  # (inception) crops are compared by their windows below, as the two resamplers differ at the edges.
  _same_distribution(stream, store, ("top", "left", "height", "width") if fields["train_crop"] == "random"
                     else ("top", "left"))
  # Each path varies what the config varies (the test would pass on two constant paths otherwise).
  for key in ("top", "left"):
    assert np.std(stream[key]) > 1 and np.std(store[key]) > 1, key
  assert 0.4 < store["mirrored"].mean() < 0.6


@pytest.mark.parametrize("min_area,aspect", [(0.25, (3 / 4, 4 / 3)), (0.5, (0.6, 1.2)), (0.08, (3 / 4, 4 / 3))])
def test_both_paths_draw_the_same_inception_windows(min_area, aspect):
  aug = augmentation.TrainAugment.from_config(_plain(train_crop="inception", inception_min_area=min_area,
                                                     inception_aspect_range=aspect))
  shape = tf.constant([72, 72])
  stream = np.stack([augment.inception_crop_window(shape, aug.min_area, tf.constant([3, i]), aug.aspect_range)
                     .numpy() for i in range(N)])
  keys = jax.random.split(jax.random.key(9), N)
  store = np.asarray(jax.jit(jax.vmap(lambda k: device_augment.inception_window(k, 72, aug.min_area,
                                                                                aug.aspect_range)))(keys))
  for i, name in enumerate(("top", "left", "height", "width")):
    p = stats.ks_2samp(stream[:, i], store[:, i]).pvalue
    assert p > 1e-3, (name, p, stream[:, i].mean(), store[:, i].mean())
  area = store[:, 2] * store[:, 3] / 72 ** 2
  assert area.min() >= min_area - 1e-6 and area.max() <= 1.0 and np.std(area) > 0.05


def test_both_paths_draw_the_same_lighting():
  cfg = _input(train_crop="center", flip=False, mean_rgb=(0.0, 0.0, 0.0), std_rgb=(1.0, 1.0, 1.0))
  grey = np.full((72, 72, 3), 128, np.uint8)
  stream = _stream(cfg, grey).mean(axis=(1, 2)) - 128
  store = _store(cfg, grey).mean(axis=(1, 2)) - 128
  for channel in range(3):
    assert stats.ks_2samp(stream[:, channel], store[:, channel]).pvalue > 1e-3, channel
    assert np.std(store[:, channel]) > 1.0  # σ = 0.1 shifts each channel by about 3 grey levels


def test_lighting_changes_every_training_image_in_the_imagenette_study_config():
  # experiments/sweeps/alexnet_imagenette.py's base (res=112, unit-scale inputs, store pipeline): the
  # `pca_off` member differs from the baseline by a per-image RGB offset on both paths, about
  # 255·0.1·0.2175·0.58 ≈ 3.2 grey levels per channel, i.e. ≈ 0.056 after division by the std.
  base = "init=he_in,inputs=unit,res=112,bf16"
  on, off = alexnet_config.get_config(base).input, alexnet_config.get_config(base + ",pca=0.0").input
  assert (on.pca_lighting, off.pca_lighting, on.image_size, on.resize_size) == (0.1, 0.0, 112, 128)
  image = np.random.default_rng(0).integers(0, 256, (128, 128, 3), np.uint8)
  for name, run in (("stream", _stream), ("store", _store)):
    diff = run(on, image, 200) - run(off, image, 200)
    shift = diff.mean(axis=(1, 2))
    assert np.abs(diff - shift[:, None, None]).max() < 1e-4, name  # an offset per image, nothing else
    assert (np.abs(shift).max(axis=1) > 1e-4).all(), name  # every image is changed
    assert 0.04 < np.sqrt((shift ** 2).mean()) < 0.075, (name, np.sqrt((shift ** 2).mean()))


def test_the_store_honours_center_square_on_a_wide_image(tmp_path):
  # A 60×150 source: short side 60. Resized to 72 the central square is original columns 45..104.
  wide = _coordinates(60, 150)
  path = tmp_path / "wide.png"
  path.write_bytes(_png(wide))
  stored = prepare_folder.square(str(path), 72)
  for region in ("center_square", "full"):
    seen = _read(_stream(_plain(crop_region=region), wide, 400))
    inside = (seen["left"] >= 44) & (seen["left"] + seen["width"] <= 105)
    assert inside.all() if region == "center_square" else not inside.all(), region
  on_store = _read(_store(_plain(crop_region="center_square"), stored))
  assert on_store["left"].min() >= 44 and (on_store["left"] + on_store["width"]).max() <= 105
  stream = _read(_stream(_plain(crop_region="center_square"), wide))
  # The same crops, in original pixels, up to the store's resampling (under a pixel).
  for key in ("top", "left"):
    assert abs(np.mean(stream[key]) - np.mean(on_store[key])) < 1.0, key
    assert abs(np.std(stream[key]) - np.std(on_store[key])) < 1.0, key


def test_crop_region_full_is_refused_where_a_store_cannot_honour_it():
  c = alexnet_config.get_config("smoke")
  c.unlock()
  assert c.input.pipeline == "store" and c.input.crop_region == "center_square"
  assert not validate.problems(c, check_data=False, geometry=False)
  c.input.crop_region = "full"
  found = validate.problems(c, check_data=False, geometry=False)
  assert len(found) == 1 and "crop_region='full'" in found[0] and "center_square" in found[0], found
  c.input.pipeline = "stream"  # the stream path honours it
  assert not validate.problems(c, check_data=False, geometry=False)
  c.input.pipeline, c.input.train_crop = "store", "inception"  # crop_region is about random crops only
  assert not validate.problems(c, check_data=False, geometry=False)


def test_crop_region_full_with_a_store_exits_2_with_one_line(tmp_path, capsys):
  workdir = tmp_path / "run"
  code, text = _run(["--config=configs/alexnet.py:smoke", "--config.input.crop_region=full",
                     f"--workdir={workdir}"], capsys)
  _assert_one_line_error(code, text, "config.input.crop_region='full'", "pipeline='store'")
  assert not workdir.exists()
