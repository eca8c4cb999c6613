"""Scoring, checked where a small change would still pass the broader tests: the exact keys of the
per-class rows and the confusion pairs, empty classes, and the result of an empty tally."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from alexnet_jax.eval import scoring


def _tally() -> scoring.Tally:
  t = scoring.Tally(num_classes=3)
  labels = np.array([0, 0, 0, 1, 1])
  preds = np.array([1, 1, 0, 0, 1])
  t.add(np.stack([preds, (preds + 1) % 3], 1), np.arange(5.0), labels, np.ones(5))
  return t


def test_per_class_rows_exactly_and_without_warnings_for_an_empty_class():
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # an empty class is nan by choice, not by a 0/0 warning
    rows = scoring.per_class_rows(_tally(), ["a", "b", "c"])
  assert [sorted(r) for r in rows] == [["class", "examples", "index", "top1"]] * 3
  assert [(r["index"], r["class"], r["examples"]) for r in rows] == [(0, "a", 3), (1, "b", 2), (2, "c", 0)]
  assert rows[0]["top1"] == pytest.approx(1 / 3) and rows[1]["top1"] == 0.5 and np.isnan(rows[2]["top1"])


def test_confused_pairs_exactly():
  pairs = scoring.confused_pairs(_tally().confusion, ["a", "b", "c"], top=10)
  assert pairs == [{"true": "a", "predicted": "b", "count": 2, "fraction_of_true": pytest.approx(2 / 3)},
                   {"true": "b", "predicted": "a", "count": 1, "fraction_of_true": 0.5}]
  assert scoring.confused_pairs(np.eye(3, dtype=int) * 5, ["a", "b", "c"], top=3) == []
  # Ties keep the lower flat index first; `top` cuts the list.
  tie = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]])
  assert [(p["true"], p["predicted"]) for p in scoring.confused_pairs(tie, "abc", top=2)] == [("a", "b"), ("a", "c")]
  assert scoring.confused_pairs(tie, "abc", top=0) == []


def test_an_empty_tally_and_its_result_keys():
  t = scoring.Tally(num_classes=2)
  assert t.result() == {"top1": 0.0, "top5": 0.0, "loss": 0.0, "num_examples": 0.0}
  t.add(np.zeros((2, 2), int), np.array([1.0, 3.0]), np.array([0, 1]), np.array([1.0, 0.0]))
  assert t.result() == {"top1": 1.0, "top5": 1.0, "loss": 1.0, "num_examples": 1.0}
  assert t.class_total.dtype == np.int64 and t.confusion.shape == (2, 2)
  assert t.class_total.tolist() == [1, 0] and t.class_top1.tolist() == [1, 0]
  assert t.confusion.tolist() == [[1, 0], [0, 0]] and t.skipped == 0.0


def test_confused_pairs_of_an_unsigned_matrix_and_ties_in_a_large_one():
  small = np.array([[5, 1, 0], [3, 5, 0], [0, 2, 5]], np.uint16)  # negating unsigned counts would wrap
  assert [(p["true"], p["predicted"], p["count"]) for p in scoring.confused_pairs(small, "abc", top=2)] == [
      ("b", "a", 3), ("c", "b", 2)]
  n = 40
  tied = np.ones((n, n), np.int64)  # every off-diagonal count equal: row-major order, stably
  names = [str(i) for i in range(n)]
  pairs = scoring.confused_pairs(tied, names, top=200)
  want = [(str(t), str(p)) for t in range(n) for p in range(n) if t != p][:200]
  assert [(p["true"], p["predicted"]) for p in pairs] == want


def test_counts_are_integers():
  t = _tally()
  assert t.class_total.dtype == t.class_top1.dtype == t.confusion.dtype == np.int64
  assert t.class_top1.tolist() == [1, 1, 0]


def test_real_label_sets_accumulate_over_batches():
  t = scoring.Tally(num_classes=3)
  topk = np.array([[0, 1], [1, 2], [2, 0]])
  real = np.array([[0, -1], [2, -1], [-1, -1]])  # rank 1, rank 2, no labels
  t.add(topk, np.array([1.0, 2.0, 9.0]), np.zeros(3, int), np.ones(3), real=real)
  t.add(topk, np.array([3.0, 4.0, 9.0]), np.zeros(3, int), np.ones(3), real=real)
  assert t.result() == {"top1": 0.5, "top5": 1.0, "loss": 2.5, "num_examples": 4.0, "num_skipped": 2.0}
  assert t.confusion.sum() == 0 and t.class_total.sum() == 0  # ReaL batches have no single label
