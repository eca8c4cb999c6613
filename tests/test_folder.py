"""Image folders (alexnet_jax/data/folder.py): readable files load, broken and odd ones are skipped and named."""

import io
import os

import numpy as np
import pytest
from absl import logging
from PIL import Image

from alexnet_jax.data import folder, input_pipeline as ip
from alexnet_jax.configs import common


def _config(root):
  c = common.base_config()
  c.dataset = str(root)
  c.input.image_size, c.input.resize_size = 24, 28
  c.batch_size, c.eval_batch_size = 4, 4
  return c


def _jpeg_bytes(mode: str, seed: int) -> bytes:
  rng = np.random.default_rng(seed)
  arr = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
  img = Image.fromarray(arr)
  if mode != "RGB":
    img = img.convert(mode)
  buf = io.BytesIO()
  img.save(buf, format="JPEG", quality=90)
  return buf.getvalue()


def _png_bytes(seed: int) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(np.random.default_rng(seed).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(
      buf, format="PNG")
  return buf.getvalue()


def _bad_folder(root) -> dict[str, list[str]]:
  """A train split with good, oddly encoded and broken files; returns names by kind."""
  good = {
      "a/rgb_0.JPEG": _jpeg_bytes("RGB", 0), "a/rgb_1.jpg": _jpeg_bytes("RGB", 1),
      "a/cmyk.JPEG": _jpeg_bytes("CMYK", 2), "b/grey.JPEG": _jpeg_bytes("L", 3),
      "b/png_named.JPEG": _png_bytes(4), "b/rgb_2.jpeg": _jpeg_bytes("RGB", 5),
  }
  broken = {
      "a/zero.JPEG": b"", "b/corrupt.JPEG": b"\xff\xd8\xff\xe0" + os.urandom(500),
      "b/truncated.JPEG": _jpeg_bytes("RGB", 6)[:300], "a/text.png": b"not a png at all",
  }
  ignored = {"a/README.txt": b"notes", "b/labels.csv": b"x,y"}
  for split in ("train", "val"):
    for rel, data in {**good, **broken, **ignored}.items():
      path = os.path.join(root, split, rel)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "wb") as f:
        f.write(data)
  return {"good": sorted(good), "broken": sorted(broken)}


def test_bad_files_skipped_counted_and_logged(tmp_path, monkeypatch):
  files = _bad_folder(tmp_path)
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *a: warnings.append(msg % a))
  c = _config(tmp_path)
  info = ip.get_info(c)
  assert (info.num_train, info.num_eval, info.class_names) == (6, 6, ("a", "b"))
  assert any("Skipping 4 unreadable" in w and "truncated.JPEG" in w and "zero.JPEG" in w
             for w in warnings), warnings
  split = ip._source(c).splits["train"]
  assert sorted(split.skipped) == files["broken"]
  batch = next(ip.train_batches(c))  # CMYK, grey and PNG-named-JPEG decode as RGB
  assert batch["image"].shape == (4, 24, 24, 3) and np.isfinite(batch["image"]).all()
  batches = list(ip.eval_batches(c))
  assert sum(b["mask"].sum() for b in batches) == 6


def test_cmyk_and_grey_decode_to_rgb():
  import tensorflow as tf
  from alexnet_jax.data import augment
  for mode in ("CMYK", "L"):
    data = _jpeg_bytes(mode, 1)
    ref = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    out = augment.decode_rgb(tf.constant(data)).numpy().astype(int)
    assert out.shape == (30, 40, 3)
    assert np.abs(out - ref).mean() < 8, mode


def test_manifest_is_cached_and_falls_back_when_folder_not_writable(tmp_path, monkeypatch):
  _bad_folder(tmp_path / "data")
  blocker = tmp_path / "a_file"
  blocker.write_text("x")
  cache = tmp_path / "cache"
  # The data folder is "read-only" (a path that cannot be created), so the cache dir is used.
  monkeypatch.setattr(folder, "_cache_dirs", lambda d: [str(blocker / "sub"), str(cache)])
  s1 = folder.load_split(str(tmp_path / "data"), "train", ("a", "b"))
  assert len(os.listdir(cache)) == 1 and len(s1.skipped) == 4
  calls = []
  monkeypatch.setattr(folder, "find_unreadable", lambda *a: calls.append(a) or [])
  s2 = folder.load_split(str(tmp_path / "data"), "train", ("a", "b"))
  assert not calls and s2 == s1  # read from the manifest, no second scan
  (tmp_path / "data" / "train" / "a" / "new.JPEG").write_bytes(_jpeg_bytes("RGB", 9))
  folder.load_split(str(tmp_path / "data"), "train", ("a", "b"))
  assert calls  # the listing changed, so the manifest no longer applies


def test_skip_corrupt_off_is_an_error(tmp_path):
  _bad_folder(tmp_path)
  c = _config(tmp_path)
  c.input.skip_corrupt = False
  with pytest.raises(ip.DataError, match="unreadable image.*skip_corrupt=True"):
    ip.get_info(c)


def test_empty_class_folder_is_named(tmp_path):
  _bad_folder(tmp_path)
  os.makedirs(tmp_path / "train" / "c_empty")
  (tmp_path / "train" / "c_empty" / "notes.txt").write_text("no images here")
  with pytest.raises(ip.DataError, match=r"c_empty.*holds no images"):
    ip.get_info(_config(tmp_path))


def test_class_with_only_broken_files_is_named(tmp_path):
  _bad_folder(tmp_path)
  os.makedirs(tmp_path / "train" / "d")
  (tmp_path / "train" / "d" / "x.JPEG").write_bytes(b"")
  with pytest.raises(ip.DataError, match=r"train/d.*no readable images"):
    ip.get_info(_config(tmp_path))


def test_empty_split_is_named(tmp_path):
  _bad_folder(tmp_path)
  for d in ("a", "b"):
    for f in os.listdir(tmp_path / "val" / d):
      os.remove(tmp_path / "val" / d / f)
    os.rmdir(tmp_path / "val" / d)
  with pytest.raises(ip.DataError, match=r"val.*no class folders"):
    ip.get_info(_config(tmp_path))
