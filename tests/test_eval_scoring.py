"""Scoring (alexnet_jax/eval/scoring.py and the multi-view step): top-k hits, ties, view averaging, tallies.

Every expected value is computed by hand; no model is trained. The multi-view step runs with a
stand-in model whose logits are the log of chosen probabilities, so each view's softmax, and their
average, are known exactly.
"""

import types

import jax
import numpy as np
import pytest

from alexnet_jax.eval import run as eval_run
from alexnet_jax.eval import scoring

# One row per rank: the label sits at rank r (0-based) of a top-10 list.
RANKED = np.array([np.roll(np.arange(10), r) for r in range(10)])  # row r: label 0 at position r


# ----------------------------------------------------------------------------- topk_hits


def test_topk_hits_count_ranks_one_and_one_to_five_only():
  top1, top5 = scoring.topk_hits(RANKED, np.zeros(10, int))
  assert top1.tolist() == [True] + [False] * 9
  assert top5.tolist() == [True] * 5 + [False] * 5  # rank 6 (index 5) is not a top-5 hit


def test_topk_hits_read_each_examples_own_row():
  topk = np.array([[7, 2, 9, 4, 5, 1],   # label 2: second → top-5 only
                   [3, 8, 0, 6, 1, 2],   # label 3: first
                   [4, 4, 4, 4, 4, 8]])  # label 8: sixth → neither
  top1, top5 = scoring.topk_hits(topk, np.array([2, 3, 8]))
  assert top1.tolist() == [False, True, False]
  assert top5.tolist() == [True, True, False]


def test_topk_hits_with_k_1_make_top5_equal_top1():
  topk = np.array([[1], [0], [2]])
  top1, top5 = scoring.topk_hits(topk, np.array([1, 1, 2]))
  assert top1.tolist() == top5.tolist() == [True, False, True]


def test_real_hits_any_label_in_the_set_and_only_ranks_one_to_five():
  real = np.array([[5, 0, -1]] * 10)  # labels {5, 0}: in RANKED row r, 0 is at r and 5 at (r + 5) % 10
  top1, top5, _ = scoring.real_hits(RANKED, real)
  assert top1.tolist() == [True] + [False] * 4 + [True] + [False] * 4
  assert top5.tolist() == [True] * 10
  only_zero = np.array([[0, -1, -1]] * 10)
  top1, top5, _ = scoring.real_hits(RANKED, only_zero)
  assert top1.sum() == 1 and top5.tolist() == [True] * 5 + [False] * 5
  _, _, valid = scoring.real_hits(RANKED[:2], np.array([[-1, -1], [3, -1]]))
  assert valid.tolist() == [False, True]  # no valid label: not scored


def test_real_hits_ignore_the_padding_value():
  """-1 pads the label sets: it never matches a predicted class, and an all-padding row is not scored."""
  top1, top5, valid = scoring.real_hits(np.array([[0, 1]]), np.array([[-1, -1]]))
  assert not top1[0] and not top5[0] and not valid[0]


# ----------------------------------------------------------------------------- multi-view averaging


def _views_out(view_probs: np.ndarray, labels, k: int) -> dict:
  """views_step on [B, V, C] per-view probabilities, through a model whose logits are log(p)."""
  state = types.SimpleNamespace(params={}, batch_stats={},
                                apply_fn=lambda variables, x, train: x[:, 0, 0, :])
  images = np.log(np.asarray(view_probs, np.float32))[:, :, None, None, :]  # [B, V, 1, 1, C]
  batch = {"image": images, "label": np.asarray(labels), "mask": np.ones(len(labels), np.float32)}
  return jax.device_get(eval_run.views_step(state, batch, k=k))


def test_ten_views_average_their_probabilities_per_image():
  a, b = [0.4, 0.5, 0.1], [0.9, 0.05, 0.05]
  image0 = [a] * 6 + [b] * 4  # most views vote class 1, the average says class 0: 0.6 / 0.32 / 0.08
  image1 = [[0.1, 0.2, 0.7]] * 10
  out = _views_out(np.array([image0, image1]), labels=[1, 2], k=3)
  assert out["topk"].tolist() == [[0, 1, 2], [2, 1, 0]]
  np.testing.assert_allclose(out["topk_prob"], [[0.6, 0.32, 0.08], [0.7, 0.2, 0.1]], rtol=1e-5)
  np.testing.assert_allclose(out["nll"], -np.log([0.32, 0.7]), rtol=1e-5)
  top1, top5 = scoring.topk_hits(out["topk"], out["label"])
  assert top1.tolist() == [False, True] and top5.tolist() == [True, True]


def test_one_view_is_its_own_softmax_and_ties_go_to_the_lower_class():
  p = np.array([[[0.1, 0.3, 0.2, 0.3, 0.1]]])  # classes 1 and 3 tie
  out = _views_out(p, labels=[3], k=5)
  assert out["topk"].tolist() == [[1, 3, 2, 0, 4]]
  top1, top5 = scoring.topk_hits(out["topk"], out["label"])
  assert not top1[0] and top5[0]
  out = _views_out(p, labels=[3], k=1)
  assert out["topk"].shape == (1, 1) and out["topk"].tolist() == [[1]]


# ----------------------------------------------------------------------------- the Tally


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


def test_tally_sums_batches_per_class_and_by_rank():
  t = scoring.Tally(num_classes=10)
  t.add(RANKED[:6], np.ones(6), np.zeros(6, int), np.ones(6))   # ranks 1..6
  t.add(RANKED[6:], np.full(4, 3.0), np.zeros(4, int), np.ones(4))  # ranks 7..10
  r = t.result()
  assert (r["num_examples"], r["top1"], r["top5"]) == (10, 0.1, 0.5)
  assert r["loss"] == pytest.approx((6 + 12) / 10)
  assert t.class_total[0] == 10 and t.class_top1[0] == 1
  assert t.confusion[0].tolist() == [1] * 10  # RANKED row r predicts class (10 - r) % 10 first


def test_per_class_rows_and_confused_pairs():
  t = scoring.Tally(num_classes=3)
  labels = np.array([0, 0, 0, 1, 1, 2])
  preds = np.array([1, 1, 0, 0, 1, 2])
  t.add(np.stack([preds, preds], 1), np.zeros(6), labels, np.ones(6))
  pairs = scoring.confused_pairs(t.confusion, ["a", "b", "c"], top=5)
  assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [("a", "b", 2), ("b", "a", 1)]
  assert pairs[0]["fraction_of_true"] == pytest.approx(2 / 3)
  assert len(scoring.confused_pairs(t.confusion, ["a", "b", "c"], top=1)) == 1
  rows = scoring.per_class_rows(t, ["a", "b"])  # a missing name falls back to the index
  assert [(r["class"], r["examples"]) for r in rows] == [("a", 3), ("b", 2), ("2", 1)]
  assert [r["top1"] for r in rows] == pytest.approx([1 / 3, 0.5, 1.0])
  empty = scoring.per_class_rows(scoring.Tally(num_classes=1), ["a"])
  assert np.isnan(empty[0]["top1"])
