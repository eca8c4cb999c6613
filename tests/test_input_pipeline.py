"""The input pipeline on the embedded dataset and on image folders (generated and real)."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from alexnet_jax.data import embedded, input_pipeline as ip
from alexnet_jax.configs import common
from tests.conftest import imagenette_slice, write_image_folder


def _config(dataset, data_dir="", **input_kw):
  c = common.base_config()
  c.dataset = dataset
  c.data_dir = data_dir
  c.embedded_train_size, c.embedded_eval_size = 60, 10
  c.input.image_size, c.input.resize_size = 32, 40
  c.input.shuffle_buffer = 64
  c.input.update(input_kw)
  c.batch_size, c.eval_batch_size = 8, 4
  return c


@pytest.fixture(scope="module")
def emb_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def _write_folder(root, split_sizes: dict[str, int]) -> str:
  """Rendered circles, squares and triangles as 40×52 JPEGs, each split's images spread evenly."""
  rng = np.random.default_rng(0)
  classes = embedded.CLASS_NAMES[:3]
  counts = {split: {c: len(range(i, n, len(classes))) for i, c in enumerate(classes)}
            for split, n in split_sizes.items()}

  def shape(k, c):
    return np.asarray(Image.fromarray(embedded.render(rng, embedded.CLASS_NAMES.index(c))).resize((40, 52)))

  return write_image_folder(root, counts, names=lambda k: f"{k:04d}.JPEG", pixels=shape)


def _digest(image: np.ndarray) -> str:
  return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def test_embedded_info_and_train_batches(emb_dir):
  c = _config("embedded", emb_dir)
  info = ip.get_info(c)
  assert (info.num_classes, info.num_train, info.num_eval) == (10, 60, 10)
  assert info.class_names[0] == "circle" and len(info.class_names) == 10
  it = ip.train_batches(c)
  batch = next(it)
  assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.float32
  assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
  assert ((batch["label"] >= 0) & (batch["label"] < 10)).all()
  # Normalised: mean subtracted, so values straddle zero on the 0..255 scale.
  assert batch["image"].min() < 0 < batch["image"].max() and np.abs(batch["image"]).max() < 300


def test_train_resume_is_bit_exact(emb_dir):
  c = _config("embedded", emb_dir)
  it = ip.train_batches(c)
  stream = [next(it) for _ in range(10)]  # 7 steps per epoch: crosses into epoch 1
  for k in (3, 7, 9):
    resumed = next(ip.train_batches(c, start_step=k))
    np.testing.assert_array_equal(resumed["image"], stream[k]["image"])
    np.testing.assert_array_equal(resumed["label"], stream[k]["label"])
  # Epochs are reshuffled, and the seed matters.
  assert not np.array_equal(stream[0]["image"], stream[7]["image"])
  c2 = _config("embedded", emb_dir)
  c2.seed = 1
  assert not np.array_equal(next(ip.train_batches(c2))["image"], stream[0]["image"])


def test_embedded_eval_exactly_once_with_remainder(emb_dir):
  c = _config("embedded", emb_dir)
  assert ip.num_eval_batches(c) == 3
  batches = list(ip.eval_batches(c))
  assert len(batches) == 3
  masks = np.concatenate([b["mask"] for b in batches])
  assert masks.sum() == 10 and masks.dtype == np.float32
  labels = np.concatenate([b["label"] for b in batches])[masks > 0]
  assert sorted(labels.tolist()) == list(range(10))  # validation labels are index % 10


def test_multi_process_eval_covers_once(emb_dir):
  c = _config("embedded", emb_dir)
  c.eval_batch_size = 4
  per_process = [list(ip.eval_batches(c, process_index=i, process_count=2)) for i in range(2)]
  n = ip.num_eval_batches(c, process_count=2)
  assert [len(p) for p in per_process] == [n, n] == [3, 3]
  assert all(b["image"].shape[0] == 2 for p in per_process for b in p)
  labels = [l for p in per_process for b in p for l in b["label"][b["mask"] > 0]]
  assert sorted(labels) == list(range(10))


def test_custom_preprocess_fn_and_batch_size(emb_dir):
  c = _config("embedded", emb_dir)
  base = ip.default_eval_preprocess(c)
  import tensorflow as tf
  two_crops = lambda img: tf.stack([base(img), base(tf.image.flip_left_right(img))])
  batches = list(ip.eval_batches(c, preprocess_fn=two_crops, batch_size=6))
  assert [b["image"].shape for b in batches] == [(6, 2, 32, 32, 3)] * 2
  assert sum(b["mask"].sum() for b in batches) == 10
  assert batches[-1]["image"][-1].sum() == 0  # padding is blank


def test_folder_pipeline_and_process_shards(tmp_path):
  root = _write_folder(tmp_path / "shapes", {"train": 30, "val": 7})
  c = _config(root, train_crop="center", flip=False, pca_lighting=0.0)
  info = ip.get_info(c)  # eval_split 'validation' falls back to 'val'
  assert info.class_names == ("circle", "square", "triangle")
  assert (info.num_train, info.num_eval, info.num_classes) == (30, 7, 3)
  batch = next(ip.train_batches(c))
  assert batch["image"].shape == (8, 32, 32, 3) and set(batch["label"]) <= {0, 1, 2}
  # Two processes: 4 per batch each, 3 steps per epoch, disjoint examples within the epoch.
  seen = []
  for p in range(2):
    it = ip.train_batches(c, process_index=p, process_count=2)
    imgs = [b["image"] for _ in range(3) for b in [next(it)]]
    assert imgs[0].shape == (4, 32, 32, 3)
    seen.append({_digest(x) for b in imgs for x in b})
  assert len(seen[0]) == len(seen[1]) == 12 and not seen[0] & seen[1]
  # Resume on a folder, with augmentation on.
  c_aug = _config(root)
  it = ip.train_batches(c_aug)
  stream = [next(it) for _ in range(5)]
  np.testing.assert_array_equal(next(ip.train_batches(c_aug, start_step=4))["image"], stream[4]["image"])
  # Eval: 7 images over two processes with 2 per process-batch.
  c.eval_batch_size = 4
  ev = [list(ip.eval_batches(c, process_index=p, process_count=2)) for p in range(2)]
  assert len(ev[0]) == len(ev[1]) == 2
  assert sum(b["mask"].sum() for p in ev for b in p) == 7


def test_missing_split_and_unknown_dataset(tmp_path):
  root = _write_folder(tmp_path / "f", {"train": 6})
  with pytest.raises(ip.DataError, match=r"no split folder 'validation'.*\['train'\]"):
    ip.get_info(_config(root))
  with pytest.raises(ip.DataError, match="neither an existing image folder nor a TFDS"):
    ip.get_info(_config("no_such_dataset_xyz"))
  c = _config(_write_folder(tmp_path / "g", {"train": 6, "val": 3}))
  c.batch_size = 7
  with pytest.raises(ip.DataError, match="multiple of the number of processes"):
    next(ip.train_batches(c, process_count=2))


@pytest.mark.shared_data
def test_real_imagenette_subset(shared_data, tmp_path):
  """A slice of real Imagenette (20 train / 5 val per class), read through the folder path."""
  imagenette_slice(shared_data, tmp_path, train=20, val=5)
  c = _config(str(tmp_path / "imagenette"))
  c.input.image_size, c.input.resize_size = 64, 72
  info = ip.get_info(c)
  assert info.num_classes == 10 and info.class_names[0] == "n01440764"
  assert (info.num_train, info.num_eval) == (200, 50)
  batch = next(ip.train_batches(c))
  assert batch["image"].shape == (8, 64, 64, 3) and np.isfinite(batch["image"]).all()
  labels = np.concatenate([b["label"][b["mask"] > 0] for b in ip.eval_batches(c)])
  assert np.bincount(labels, minlength=10).tolist() == [5] * 10


def test_one_shard_rule_for_every_process_count():
  for n in (0, 1, 7, 10, 1001):
    for count in (1, 2, 3, 8):
      bounds = [ip.shard_bounds(n, i, count) for i in range(count)]
      sizes = [hi - lo for lo, hi in bounds]
      assert bounds[0][0] == 0 and bounds[-1][1] == n and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
      assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_unknown_eval_split_is_a_data_error(emb_dir):
  with pytest.raises(ip.DataError, match=r"'test' is not a split.*available"):
    ip.num_eval_batches(_config("embedded", emb_dir), split="test")


def test_data_package_does_not_import_jax():
  """The data code stays framework-neutral (TensorFlow itself may load JAX; we never do), except
  device_augment.py, whose functions run inside the jitted step."""
  import pathlib
  import re
  pkg = pathlib.Path(ip.__file__).parent
  for path in pkg.glob("*.py"):
    if path.name == "device_augment.py":
      continue
    assert not re.search(r"^\s*(import|from)\s+(jax|flax)\b", path.read_text(), re.M), path
