"""A store prepared from an image folder without TensorFlow (PIL) holds what the TensorFlow path stores."""

import sys

import numpy as np
import pytest
from PIL import Image

from alexnet_jax.configs import cifar_cnn
from alexnet_jax.data import prepare, prepare_folder
from alexnet_jax.data import store as store_lib


def _folder(root, sizes):
  """<root>/{train,test}/<class>/<i>.jpg of smooth random pictures (JPEG q95) at the given sizes."""
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    for c in ("cat", "dog"):
      d = root / split / c
      d.mkdir(parents=True)
      for i, (h, w) in enumerate(sizes):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BILINEAR).save(d / f"{i}.jpg", quality=95)
  (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg")
  return root


def _config(folder, store_dir):
  c = cifar_cnn.get_config(f"data={folder}")
  c.unlock()
  c.input.store_dir = str(store_dir)
  c.lock()
  return c


def _arrays(path, split):
  s = store_lib.Store(path)
  n = s.count(split)
  return s.gather(split, np.arange(n)), s.labels(split)


def test_pil_store_equals_the_tensorflow_store_for_images_at_the_stored_size(tmp_path, monkeypatch):
  folder = _folder(tmp_path / "data", [(32, 32)] * 3)
  tf_path = prepare.prepare(_config(folder, tmp_path / "tf"))
  monkeypatch.setitem(sys.modules, "tensorflow", None)  # as on a machine without TensorFlow
  assert not prepare._have_tensorflow()
  pil_path = prepare.prepare(_config(folder, tmp_path / "pil"))
  for split in ("train", "test"):
    (tf_images, tf_labels), (pil_images, pil_labels) = _arrays(tf_path, split), _arrays(pil_path, split)
    assert len(pil_labels) == 6  # three per class; the broken file is skipped
    np.testing.assert_array_equal(pil_labels, tf_labels)
    # No resize; the decoders differ only in the IDCT (TensorFlow's fast, PIL's accurate one).
    diff = np.abs(pil_images.astype(int) - tf_images.astype(int))
    assert diff.max() <= 12 and diff.mean() < 3, (diff.max(), diff.mean())
  manifest = store_lib.Store(pil_path).manifest
  assert manifest["decoder"] == "pil" and store_lib.Store(tf_path).manifest["decoder"] == "tensorflow"
  assert manifest["class_names"] == ["cat", "dog"]


def test_pil_decode_is_tensorflows_accurate_idct(tmp_path):
  import tensorflow as tf
  folder = _folder(tmp_path / "data", [(32, 32)])
  path = folder / "train" / "cat" / "0.jpg"
  accurate = tf.io.decode_jpeg(path.read_bytes(), channels=3, dct_method="INTEGER_ACCURATE").numpy()
  np.testing.assert_array_equal(prepare_folder.square(str(path), 32), accurate)


def test_pil_square_resizes_the_short_side_and_keeps_the_centre(tmp_path):
  img = np.zeros((40, 80, 3), np.uint8)
  img[:, 10:70] = 255  # a white band wider than the central 40 columns
  Image.fromarray(img).save(tmp_path / "wide.png")
  out = prepare_folder.square(str(tmp_path / "wide.png"), 20)
  assert out.shape == (20, 20, 3) and out.dtype == np.uint8
  assert out.min() >= 250  # the central square of the 20×40 resize is all band
  (tmp_path / "bad.jpg").write_bytes(b"nope")
  assert prepare_folder.square(str(tmp_path / "bad.jpg"), 20) is None


def test_pil_store_is_complete_or_absent(tmp_path, monkeypatch):
  """An error mid-way leaves no store under the final name (the next run starts again)."""
  folder = _folder(tmp_path / "data", [(32, 32)] * 2)
  monkeypatch.setitem(sys.modules, "tensorflow", None)
  config = _config(folder, tmp_path / "pil")

  def fail(*args, **kwargs):
    raise OSError("disk went away")

  monkeypatch.setattr(prepare, "_write_shard", fail)
  with pytest.raises(OSError):
    prepare.prepare(config)
  assert not (tmp_path / "pil").exists() or not any(p.name.endswith("px") for p in (tmp_path / "pil").iterdir())
  monkeypatch.undo()
  monkeypatch.setitem(sys.modules, "tensorflow", None)
  path = prepare.prepare(config)
  assert store_lib.Store(path).count("train") == 4  # two per class; the broken file skipped
