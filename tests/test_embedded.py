"""The embedded offline dataset: deterministic rendering, a real TFDS builder, learnability."""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from alexnet_jax.data import embedded


def test_examples_deterministic_and_distinct():
  a, la = embedded.example("train", 5)
  b, lb = embedded.example("train", 5)
  c, _ = embedded.example("validation", 5)
  assert a == b and la == lb == 5
  assert a != c  # splits are rendered from different seeds
  img = Image.open(io.BytesIO(a))
  assert img.format == "JPEG" and img.size == (embedded.IMAGE_SIZE,) * 2 and img.mode == "RGB"


def test_classes_balanced_and_images_vary():
  labels = [embedded.example("train", i)[1] for i in range(40)]
  assert np.bincount(labels).tolist() == [4] * 10
  imgs = [np.asarray(Image.open(io.BytesIO(embedded.example("train", i)[0]))) for i in (0, 10, 20)]
  assert all(np.abs(imgs[0].astype(int) - x).mean() > 10 for x in imgs[1:])  # same class, differ


def test_builder_registered_and_sizes_get_their_own_config(tmp_path):
  assert embedded.NAME in tfds.list_builders()
  b1 = embedded.builder(20, 10, str(tmp_path))
  b2 = embedded.builder(30, 10, str(tmp_path))
  assert b1.data_dir != b2.data_dir
  assert b1.info.splits["train"].num_examples == 20 and b2.info.splits["train"].num_examples == 30
  assert b1.info.features["label"].names == list(embedded.CLASS_NAMES)
  ex = next(iter(b1.as_dataset(split="validation").take(1)))
  assert ex["image"].shape == (80, 80, 3)
  # Prepared data is reused (no regeneration): the builder reports it prepared at once.
  assert embedded.AlexnetJaxShapes(config=embedded.config_for(20, 10),
                                   data_dir=str(tmp_path)).is_prepared()
  with pytest.raises(ValueError, match="must both be > 0"):
    embedded.config_for(0, 10)


def test_learnable_beyond_chance():
  """A linear classifier on simple hand-made features beats chance clearly (so a convnet can)."""
  def feats(i, split):
    x = np.asarray(Image.open(io.BytesIO(embedded.example(split, i)[0])), np.float32).mean(-1)
    x = x - x.mean()
    gy, gx = np.abs(np.diff(x, axis=0)).mean(), np.abs(np.diff(x, axis=1)).mean()
    spec = np.abs(np.fft.rfft2(x))[:12, :12].ravel()
    return np.concatenate([[gy, gx, gy / (gx + 1e-3)], np.log1p(spec)])
  xtr = np.stack([feats(i, "train") for i in range(400)])
  ytr = np.arange(400) % 10
  xte = np.stack([feats(i, "validation") for i in range(200)])
  yte = np.arange(200) % 10
  mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
  xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
  w = np.linalg.solve(xtr.T @ xtr + 10 * np.eye(xtr.shape[1]), xtr.T @ np.eye(10)[ytr])
  acc = (np.argmax(xte @ w, 1) == yte).mean()
  assert acc > 0.25, acc  # chance is 0.10
