"""Evaluation protocols, sets, scoring and reports (no training: fake predictions where needed)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alexnet_jax.eval import report
from alexnet_jax.eval import scoring
from alexnet_jax.eval import sets as eval_sets
from alexnet_jax.eval import views as eval_views
from alexnet_jax.data import input_pipeline
from alexnet_jax.configs import alexnet as alexnet_config


def _config(data: str = "embedded", image_size: int = 32, resize: int = 36, **eval_fields):
  c = alexnet_config.get_config(f"smoke,data={data}" if data != "embedded" else "smoke")
  c.input.image_size = image_size
  c.input.resize_size = resize
  c.eval_batch_size = 8
  for k, v in eval_fields.items():
    c.eval[k] = v
  return c


def _ramp(h: int, w: int) -> np.ndarray:
  """uint8 [h, w, 3] with a distinct value per pixel (row·w + col), so crops can be located."""
  v = (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)
  return np.repeat(v[:, :, None], 3, axis=2)


# ----------------------------------------------------------------------------- geometry


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
  c = _config()
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
  c = _config()
  out = eval_views.make_preprocess("multiscale", c)(tf.fill([40, 40, 3], tf.constant(200, tf.uint8))).numpy()
  expect = (200.0 - np.asarray(c.input.mean_rgb)) / np.asarray(c.input.std_rgb)
  np.testing.assert_allclose(out, np.broadcast_to(expect, out.shape), atol=1e-2)


def test_unknown_protocol_and_set_are_clear_errors():
  with pytest.raises(ValueError, match="10crop"):
    eval_views.check_protocols(["ten_crop"])
  with pytest.raises(ValueError, match="validation"):
    eval_sets.check_sets(["val"])


def test_images_per_batch():
  c = _config()
  c.eval_batch_size = 250
  assert eval_views.images_per_batch(c, "10crop") == 25
  assert eval_views.images_per_batch(c, "144crop", multiple=2) == 2
  c.eval.batch_size = 3
  with pytest.raises(ValueError, match="multiple of 2"):
    eval_views.images_per_batch(c, "center", multiple=2)


# ----------------------------------------------------------------------------- scoring


def test_topk_and_real_hits():
  topk = np.array([[3, 1, 2, 0, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
  t1, t5 = scoring.topk_hits(topk, np.array([3, 4, 9]))
  assert t1.tolist() == [True, False, False] and t5.tolist() == [True, True, False]
  real = np.array([[1, 3], [9, -1], [-1, -1]])
  r1, r5, valid = scoring.real_hits(topk, real)
  assert r1.tolist() == [True, False, False]   # any of the labels counts
  assert r5.tolist() == [True, False, False]   # 9 is not in the second top-5
  assert valid.tolist() == [True, True, False]  # empty list: not scored


def test_tally_ignores_padding_and_skips_empty_real_lists():
  t = scoring.Tally(num_classes=3)
  t.add(np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]]), np.array([0.1, 0.2, 5.0]), np.array([0, 0, 0]),
        mask=np.array([1, 1, 0]))
  r = t.result()
  assert r["num_examples"] == 2 and r["top1"] == 0.5 and r["top5"] == 1.0
  assert np.isclose(r["loss"], 0.15)
  assert t.confusion[0, 1] == 1 and t.class_total.tolist() == [2, 0, 0]
  real = scoring.Tally(num_classes=3)
  real.add(np.array([[0, 1], [1, 0], [2, 0]]), np.zeros(3), np.zeros(3, int), np.ones(3),
           real=np.array([[1, 0], [2, -1], [-1, -1]]))
  rr = real.result()
  assert rr["num_examples"] == 2 and rr["num_skipped"] == 1 and rr["top1"] == 0.5 and rr["top5"] == 0.5


def test_confused_pairs_and_outputs(tmp_path):
  t = scoring.Tally(num_classes=3)
  labels = np.array([0, 0, 0, 1, 1, 2])
  preds = np.array([1, 1, 0, 0, 1, 2])
  t.add(np.stack([preds, preds], 1), np.zeros(6), labels, np.ones(6))
  pairs = scoring.confused_pairs(t.confusion, ["a", "b", "c"], top=5)
  assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [("a", "b", 2), ("b", "a", 1)]
  c = _config()
  results = {"10crop": {"validation": {**t.result(), "views": 10}}}
  out = report.write_outputs(str(tmp_path), 7, results, {("10crop", "validation"): t}, ["a", "n01440764", "c"], c)
  rows = open(os.path.join(out, "per_class_10crop_validation.csv")).read().splitlines()
  assert rows[0] == "index,class,examples,top1" and rows[2].startswith("1,tench (n01440764),2,0.5")
  assert json.load(open(os.path.join(out, "step_7.json")))["results"]["10crop"]["validation"]["num_examples"] == 6
  text = open(os.path.join(out, "report.md")).read()
  assert "40.70" in text and "18.20" in text and "5.1%" in text and "| 10crop | validation | 10 |" in text
  for picture in ("confusion_10crop_validation.png", "per_class_10crop_validation.png"):
    with Image.open(os.path.join(out, picture)) as im:
      assert im.format == "PNG" and min(im.size) > 100, picture


def test_no_pictures_for_many_classes(tmp_path):
  t = scoring.Tally(num_classes=report.MAX_PICTURE_CLASSES + 1)
  t.add(np.zeros((2, 5), np.int64), np.zeros(2), np.array([0, 1]), np.ones(2))
  assert report.write_pictures(str(tmp_path), "center", "validation", t, []) == []
  assert not os.listdir(tmp_path)


def test_evaluation_logs_progress_with_eta(monkeypatch):
  """A long evaluation is never silent: the evaluator's loop reports images done, total and ETA."""
  from alexnet_jax import progress
  from alexnet_jax.eval import run as eval_run
  lines = []
  now = [0.0]
  monkeypatch.setattr(eval_run, "PROGRESS_EVERY_S", 5.0)
  bar = progress.Progress(1000, "144crop × validation", unit="images", every_s=eval_run.PROGRESS_EVERY_S,
                          log=lines.append, clock=lambda: now[0])
  now[0] = 1.0
  assert bar.advance(100) is None  # not yet due
  now[0] = 10.0
  assert bar.advance(100) == "144crop × validation: 200/1,000 images (20.0%), 20/s, ETA 40s"
  assert "progress.Progress(" in open(eval_run.__file__).read()  # the evaluator's loop uses it


def test_one_shard_rule_for_every_process_count():
  for n in (0, 1, 7, 10, 1001):
    for count in (1, 2, 3, 8):
      bounds = [input_pipeline.shard_bounds(n, i, count) for i in range(count)]
      sizes = [hi - lo for lo, hi in bounds]
      assert bounds[0][0] == 0 and bounds[-1][1] == n and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
      assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


# ----------------------------------------------------------------------------- sets on real files


def _folder(root, split_counts: dict[str, dict[str, int]], names=None) -> str:
  """root/<split>/<class>/<file> with small solid-colour JPEGs."""
  k = 0
  for split, counts in split_counts.items():
    for cls, n in counts.items():
      os.makedirs(os.path.join(root, split, cls), exist_ok=True)
      for _ in range(n):
        name = names(k) if names else f"img{k:03d}.jpg"
        Image.fromarray(np.full((20 + k % 7, 24, 3), 10 * k % 250, np.uint8)).save(
            os.path.join(root, split, cls, name))
        k += 1
  return str(root)


def test_every_image_counts_exactly_once_with_a_remainder(tmp_path):
  root = _folder(tmp_path / "d", {"train": {"a": 2, "b": 2, "c": 2}, "val": {"a": 4, "b": 3, "c": 3}})
  c = _config(root, image_size=16, resize=18)
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
  root = _folder(tmp_path / "d", {"train": {"a": 1}, "val": {"a": 2, "b": 3}}, names=names)
  os.makedirs(os.path.join(root, "train", "b"))
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.path.join(root, "train", "b", "t.jpg"))
  real = [[0], [], [1, 0], [1], [0]]  # validation-file order; image 2 has no ReaL label
  path = tmp_path / "real.json"
  path.write_text(json.dumps(real))
  c = _config(root, image_size=8, resize=8, real_json=str(path))
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
  c = _config()
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
  root = _folder(tmp_path / "v2", {"x": {"0": 1, "2": 2, "10": 1}})
  c = _config(image_size=8, resize=8, v2_dir=os.path.join(root, "x"))
  info = input_pipeline.DatasetInfo("imagenet2012", 12, 10, 10, tuple(f"c{i}" for i in range(12)))
  es = eval_sets.make_set("v2", c, info)
  b = next(iter(es.batches(eval_views.make_preprocess("center", c), 4)))
  assert sorted(b["label"].tolist()) == [0, 2, 2, 10]


def test_minival_slices_train_and_refuses_folders(tmp_path):
  c = _config()
  c.eval.minival_size = 500
  assert eval_sets.minival_split(c, 6000) == ("train[-500:]", True)
  c.train_split = "train[:-500]"
  assert eval_sets.minival_split(c, 5500) == ("train[-500:]", False)
  c.eval.minival_size = 7000
  c.train_split = "train"
  with pytest.raises(input_pipeline.DataError, match="minival_size"):
    eval_sets.minival_split(c, 6000)
  root = _folder(tmp_path / "d", {"train": {"a": 1}})
  with pytest.raises(input_pipeline.DataError, match="image folder"):
    eval_sets.minival_split(_config(root), 1)


# ----------------------------------------------------------------------------- a trained checkpoint


def test_eval_mode_on_the_trained_run(trained_run, tmp_path, capsys, monkeypatch):
  """`--mode=eval` on the session's trained run: training's top-1, the reports and the 10-crop row."""
  import shutil
  import sys
  from alexnet_jax import main_lib
  from tests.conftest import TRAINED_CLI, TRAINED_STEPS
  wd = tmp_path / "run"
  shutil.copytree(trained_run.workdir, wd, ignore=shutil.ignore_patterns(".lock"))
  monkeypatch.setattr(sys, "argv", list(sys.argv))  # main_lib.run sets it
  with pytest.raises(SystemExit) as exit_:
    main_lib.run(["main.py", *TRAINED_CLI, f"--workdir={wd}", "--mode=eval", "--protocols=center,10crop",
                  "--sets=validation"])
  out, err = capsys.readouterr()
  assert exit_.value.code in (0, None), (out + err)[-3000:]
  assert f"Checkpoint step {TRAINED_STEPS} of {wd}" in out, out[-3000:]
  rows = {line.split("|")[1].strip(): line for line in out.splitlines() if "| validation |" in line}
  assert set(rows) == {"center", "10crop"}, out[-3000:]
  top1 = trained_run.summary["eval"]["top1"]
  assert f"| {100 * top1:.2f} |" in rows["center"]  # the same top-1 as training's own evaluation
  assert rows["10crop"].rstrip("| ").endswith("256")  # every validation image, once
  saved = json.loads((wd / "eval" / f"step_{TRAINED_STEPS}.json").read_text())
  assert saved["results"]["center"]["validation"]["top1"] == pytest.approx(top1, abs=1e-6)
  assert saved["results"]["10crop"]["validation"]["views"] == 10
  assert (wd / "eval" / "report.md").is_file()
  assert not (trained_run.workdir / "eval").exists()
