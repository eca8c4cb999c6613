"""imagenet2012 through TFDS (alexnet_jax/data/imagenet.py), prepared offline from tiny fake manual-download tars."""

import io
import os
import tarfile
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from alexnet_jax.data import imagenet, input_pipeline as ip
from alexnet_jax.configs import common

SYNSETS = ("n01440764", "n01443537", "n01484850")  # the first three ImageNet classes


def _jpeg(seed: int) -> bytes:
  arr = np.random.default_rng(seed).integers(0, 255, (36, 48, 3), dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format="JPEG")
  return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def _fake_manual_tars(manual: str, per_class: int = 3, n_val: int = 5) -> None:
  os.makedirs(manual, exist_ok=True)
  with tarfile.open(os.path.join(manual, imagenet.TRAIN_TAR), "w") as outer:
    for k, wnid in enumerate(SYNSETS):
      inner = io.BytesIO()
      with tarfile.open(fileobj=inner, mode="w") as t:
        for i in range(per_class):
          _add(t, f"{wnid}_{i}.JPEG", _jpeg(100 * k + i))
      _add(outer, f"{wnid}.tar", inner.getvalue())
  with tarfile.open(os.path.join(manual, imagenet.VAL_TAR), "w") as val:
    for i in range(1, n_val + 1):
      _add(val, f"ILSVRC2012_val_{i:08d}.JPEG", _jpeg(1000 + i))


def _config(data_dir: str):
  c = common.base_config()
  c.dataset = "imagenet2012"
  c.data_dir = data_dir
  c.input.image_size, c.input.resize_size = 24, 28
  c.batch_size, c.eval_batch_size = 4, 4
  return c


def test_missing_imagenet_fails_fast_with_instructions(tmp_path):
  start = time.monotonic()
  with pytest.raises(ip.DataError) as err:
    ip.get_info(_config(str(tmp_path)))
  assert time.monotonic() - start < 60  # generous bound; it is a couple of file checks
  msg = str(err.value)
  folder = os.path.join(str(tmp_path), "downloads", "manual")
  assert folder in msg and imagenet.TRAIN_TAR in msg and imagenet.VAL_TAR in msg
  assert "image-net.org" in msg and "configs/alexnet.py:smoke" in msg


def test_only_one_tar_names_the_missing_one(tmp_path):
  manual = os.path.join(str(tmp_path), "downloads", "manual")
  _fake_manual_tars(manual)
  os.remove(os.path.join(manual, imagenet.VAL_TAR))
  with pytest.raises(ip.DataError, match=imagenet.VAL_TAR + " is missing"):
    ip.get_info(_config(str(tmp_path)))


def test_prepared_from_fake_manual_tars(tmp_path):
  _fake_manual_tars(os.path.join(str(tmp_path), "downloads", "manual"))
  c = _config(str(tmp_path))
  info = ip.get_info(c)
  assert (info.name, info.num_classes, info.num_train, info.num_eval) == ("imagenet2012", 1000, 9, 5)
  assert info.class_names[:3] == SYNSETS
  assert tfds.builder("imagenet2012", data_dir=str(tmp_path)).is_prepared()
  batch = next(ip.train_batches(c))
  assert batch["image"].shape == (4, 24, 24, 3)
  assert set(batch["label"].tolist()) <= {0, 1, 2}
  batches = list(ip.eval_batches(c))
  assert len(batches) == ip.num_eval_batches(c) == 2
  masks = np.concatenate([b["mask"] for b in batches])
  assert masks.sum() == 5
  # Validation labels come from TFDS's bundled label file: line i is the WordNet id of
  # ILSVRC2012_val_<i>.JPEG, and the label is that id's index among the sorted class ids.
  label_file = tfds.core.tfds_path("datasets/imagenet2012/validation_labels.txt")
  wnids = label_file.read_text().split()[:5]
  expected = sorted(info.class_names.index(w) for w in wnids)
  labels = np.concatenate([b["label"] for b in batches])[masks > 0]
  assert sorted(labels.tolist()) == expected
