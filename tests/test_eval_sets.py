"""Evaluation sets (alexnet_jax/eval/sets.py): validation, ReaL, V2 and minival on small image folders."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from alexnet_jax.data import input_pipeline
from alexnet_jax.eval import scoring
from alexnet_jax.eval import sets as eval_sets
from alexnet_jax.eval import views as eval_views
from tests.conftest import eval_config
from tests.conftest import write_image_folder


def test_unknown_set_is_a_clear_error():
  with pytest.raises(ValueError, match="validation"):
    eval_sets.check_sets(["val"])


def test_every_image_counts_exactly_once_with_a_remainder(tmp_path):
  root = write_image_folder(tmp_path / "d", {"train": {"a": 2, "b": 2, "c": 2}, "val": {"a": 4, "b": 3, "c": 3}})
  c = eval_config(root, image_size=16, resize=18)
  c.eval_split = "val"
  info = input_pipeline.get_info(c)
  es = eval_sets.make_set("validation", c, info)
  batches = list(es.batches(eval_views.make_preprocess("10crop", c), 4))  # 10 images, batch 4
  assert len(batches) == 3
  assert all(b["image"].shape == (4, 10, 16, 16, 3) for b in batches)
  mask = np.concatenate([b["mask"] for b in batches])
  assert mask.tolist() == [1.0] * 10 + [0.0] * 2
  t = scoring.Tally(info.num_classes)
  for b in batches:  # a "model" that always answers class 0
    t.add(np.zeros((4, 3), int), np.zeros(4), b["label"], b["mask"])
  assert t.result()["num_examples"] == 10 and t.result()["top1"] == pytest.approx(0.4)
  assert t.class_total.tolist() == [4, 3, 3]


def test_real_labels_matched_by_file_name(tmp_path):
  names = lambda k: f"ILSVRC2012_val_{k:08d}.JPEG" if k >= 1 else "x.jpg"  # val files numbered 1..5
  root = write_image_folder(tmp_path / "d", {"train": {"a": 1}, "val": {"a": 2, "b": 3}}, names=names)
  os.makedirs(os.path.join(root, "train", "b"))
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.path.join(root, "train", "b", "t.jpg"))
  real = [[0], [], [1, 0], [1], [0]]  # validation-file order; image 2 has no ReaL label
  path = tmp_path / "real.json"
  path.write_text(json.dumps(real))
  c = eval_config(root, image_size=8, resize=8, real_json=str(path))
  c.eval_split = "val"
  info = input_pipeline.get_info(c)
  es = eval_sets.make_set("real", c, info)
  assert es.multi_label
  batches = list(es.batches(eval_views.make_preprocess("center", c), 4))
  got = np.concatenate([b["real"] for b in batches])[:5]
  assert got.tolist() == [[0, -1], [-1, -1], [1, 0], [1, -1], [0, -1]]
  t = scoring.Tally(info.num_classes)
  for b in batches:  # always predicts class 1 first
    t.add(np.tile([1, 0], (len(b["mask"]), 1)), np.zeros(len(b["mask"])), b["label"], b["mask"], b["real"])
  r = t.result()
  assert r["num_examples"] == 4 and r["num_skipped"] == 1
  assert r["top1"] == pytest.approx(0.5) and r["top5"] == pytest.approx(1.0)


def test_real_json_problems_are_clear(tmp_path):
  with pytest.raises(input_pipeline.DataError, match="reassessed-imagenet"):
    eval_sets.load_real_labels(str(tmp_path / "nope.json"), 1000)
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps([[1], [1000]]))
  with pytest.raises(input_pipeline.DataError, match="0..999"):
    eval_sets.load_real_labels(str(bad), 1000)
  with pytest.raises(input_pipeline.DataError, match="ILSVRC2012_val_"):
    eval_sets.validation_index("photo.jpg")
  assert eval_sets.validation_index("/x/n01/ILSVRC2012_val_00000001.JPEG") == 0


def _imagenet_like_info():
  return input_pipeline.DatasetInfo("imagenet2012", 1000, 10, 10, tuple(f"c{i}" for i in range(1000)))


def test_missing_sets_say_what_to_download(tmp_path):
  c = eval_config()
  c.data_dir = str(tmp_path / "tfds")  # nothing prepared here
  info = _imagenet_like_info()
  with pytest.raises(input_pipeline.DataError, match=r"(?s)ImageNetV2.*v2_dir"):
    eval_sets.make_set("v2", c, info)
  with pytest.raises(input_pipeline.DataError, match=r"(?s)real\.json.*real_json"):
    eval_sets.make_set("real", c, info)
  c.eval.v2_dir = str(tmp_path / "missing")
  with pytest.raises(input_pipeline.DataError, match="is not a folder"):
    eval_sets.make_set("v2", c, info)


def test_v2_folder_uses_class_index_folders(tmp_path):
  root = write_image_folder(tmp_path / "v2", {"x": {"0": 1, "2": 2, "10": 1}})
  c = eval_config(image_size=8, resize=8, v2_dir=os.path.join(root, "x"))
  info = input_pipeline.DatasetInfo("imagenet2012", 12, 10, 10, tuple(f"c{i}" for i in range(12)))
  es = eval_sets.make_set("v2", c, info)
  b = next(iter(es.batches(eval_views.make_preprocess("center", c), 4)))
  assert sorted(b["label"].tolist()) == [0, 2, 2, 10]


def test_minival_slices_train_and_refuses_folders(tmp_path):
  c = eval_config()
  c.eval.minival_size = 500
  assert eval_sets.minival_split(c, 6000) == ("train[-500:]", True)
  c.train_split = "train[:-500]"
  assert eval_sets.minival_split(c, 5500) == ("train[-500:]", False)
  c.eval.minival_size = 7000
  c.train_split = "train"
  with pytest.raises(input_pipeline.DataError, match="minival_size"):
    eval_sets.minival_split(c, 6000)
  root = write_image_folder(tmp_path / "d", {"train": {"a": 1}})
  with pytest.raises(input_pipeline.DataError, match="image folder"):
    eval_sets.minival_split(eval_config(root), 1)
