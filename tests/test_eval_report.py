"""Evaluation outputs (alexnet_jax/eval/report.py): tables, report.md beside the papers, per-class files, pictures."""

import json
import os

import numpy as np
from PIL import Image

from alexnet_jax.eval import report
from alexnet_jax.eval import scoring
from tests.conftest import REPO, eval_config


def test_table_rows_are_percent_accuracy_and_error():
  results = {"center": {"validation": {"top1": 0.25, "top5": 0.5, "views": 1, "num_examples": 8.0}},
             "10crop": {"validation": {"top1": 0.375, "top5": 1.0, "views": 10, "num_examples": 8.0}}}
  lines = report.format_table(results).splitlines()
  assert len(lines) == 4
  assert lines[2] == "| center | validation | 1 | 25.00 | 50.00 | 75.00 | 50.00 | 8 |"
  assert lines[3] == "| 10crop | validation | 10 | 37.50 | 100.00 | 62.50 | 0.00 | 8 |"


def test_display_names_resolve_wordnet_ids_only():
  assert report.display_names(["n01440764", "circle"]) == ("tench (n01440764)", "circle")


def test_outputs_per_class_json_report_and_pictures(tmp_path):
  t = scoring.Tally(num_classes=3)
  labels = np.array([0, 0, 0, 1, 1, 2])
  preds = np.array([1, 1, 0, 0, 1, 2])
  t.add(np.stack([preds, preds], 1), np.zeros(6), labels, np.ones(6))
  c = eval_config()
  results = {"10crop": {"validation": {**t.result(), "views": 10}}}
  out = report.write_outputs(str(tmp_path), 7, results, {("10crop", "validation"): t}, ["a", "n01440764", "c"], c)
  rows = open(os.path.join(out, "per_class_10crop_validation.csv")).read().splitlines()
  assert rows[0] == "index,class,examples,top1" and rows[2].startswith("1,tench (n01440764),2,0.5")
  confusions = json.load(open(os.path.join(out, "confusions_10crop_validation.json")))
  assert [(p["true"], p["predicted"], p["count"]) for p in confusions][0] == ("a", "tench (n01440764)", 2)
  assert json.load(open(os.path.join(out, "step_7.json")))["results"]["10crop"]["validation"]["num_examples"] == 6
  text = open(os.path.join(out, "report.md")).read()
  assert "40.70" in text and "18.20" in text and "5.1%" in text and "| 10crop | validation | 10 |" in text
  assert "not ILSVRC-2012" in text  # the embedded dataset's numbers do not compare with the papers'
  for picture in ("confusion_10crop_validation.png", "per_class_10crop_validation.png"):
    with Image.open(os.path.join(out, picture)) as im:
      assert im.format == "PNG" and min(im.size) > 100, picture


def test_no_pictures_for_many_classes(tmp_path):
  t = scoring.Tally(num_classes=report.MAX_PICTURE_CLASSES + 1)
  t.add(np.zeros((2, 5), np.int64), np.zeros(2), np.array([0, 1]), np.ones(2))
  assert report.write_pictures(str(tmp_path), "center", "validation", t, []) == []
  assert not os.listdir(tmp_path)


def test_the_papers_numbers_have_one_home():
  """report.md's rows and the model table's column both read report.PAPERS."""
  assert report.paper_error("resnet50") == "22.85 / 6.71 (10-crop)"
  assert report.paper_error("googlenet") == "– / 10.07 (1 crop)"
  assert report.paper_error("alexnet (owt)") == "–"
  assert [p["protocol"] for p in report.paper_results("googlenet")] == ["center", "10crop", "144crop"]
  text = (REPO / "experiments" / "model_table.py").read_text()
  assert "report.paper_error" in text and "22.85" not in text
