"""Scoring: top-1/top-5 hits (single labels and ReaL label sets), and the Tally of an evaluation.

The Tally sums on the host: accuracy, loss, per-class counts and the confusion matrix.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np


def topk_hits(topk: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(top-1 correct, top-5 correct) per example from the top-k class indices [B, k]."""
  labels = np.asarray(labels)[:, None]
  return topk[:, 0] == labels[:, 0], np.any(topk[:, :5] == labels, axis=1)


def real_hits(topk: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """ReaL scoring: (top-1 in the label set, any of top-5 in the set, has labels) per example.

  `real` is [B, K] with each image's labels padded by -1; an all -1 row (no valid label) is
  not scored.
  """
  real = np.asarray(real)
  valid = np.any(real >= 0, axis=1)
  top1 = np.any(topk[:, :1, None] == real[:, None, :], axis=(1, 2)) & valid
  top5 = np.any(topk[:, :5, None] == real[:, None, :], axis=(1, 2)) & valid
  return top1, top5, valid


@dataclasses.dataclass
class Tally:
  """Host-side sums over an evaluation: accuracy, loss, per-class counts and confusions."""
  num_classes: int
  count: float = 0.0
  top1: float = 0.0
  top5: float = 0.0
  nll: float = 0.0
  skipped: float = 0.0
  class_total: np.ndarray = None
  class_top1: np.ndarray = None
  confusion: np.ndarray = None  # [true, predicted] counts

  def __post_init__(self):
    c = self.num_classes
    self.class_total = np.zeros(c, np.int64)
    self.class_top1 = np.zeros(c, np.int64)
    self.confusion = np.zeros((c, c), np.int64)

  def add(self, topk: np.ndarray, nll: np.ndarray, labels: np.ndarray, mask: np.ndarray,
          real: np.ndarray | None = None) -> None:
    """Adds one batch; examples with mask 0 (padding) are ignored."""
    keep = np.asarray(mask) > 0
    topk, nll, labels = np.asarray(topk)[keep], np.asarray(nll)[keep], np.asarray(labels)[keep]
    if real is not None:
      h1, h5, valid = real_hits(topk, np.asarray(real)[keep])
      self.skipped += float((~valid).sum())
      self.count += float(valid.sum())
      self.nll += float(nll[valid].sum())
    else:
      h1, h5 = topk_hits(topk, labels)
      self.count += float(len(labels))
      self.nll += float(nll.sum())
      np.add.at(self.class_total, labels, 1)
      np.add.at(self.class_top1, labels, h1.astype(np.int64))
      np.add.at(self.confusion, (labels, topk[:, 0]), 1)
    self.top1 += float(h1.sum())
    self.top5 += float(h5.sum())

  def result(self) -> dict[str, float]:
    n = max(self.count, 1.0)
    out = {"top1": self.top1 / n, "top5": self.top5 / n, "loss": self.nll / n,
           "num_examples": self.count}
    if self.skipped:
      out["num_skipped"] = self.skipped
    return out


def per_class_rows(tally: Tally, class_names: Sequence[str]) -> list[dict[str, Any]]:
  rows = []
  for i in range(tally.num_classes):
    total = int(tally.class_total[i])
    rows.append({"index": i, "class": class_names[i] if i < len(class_names) else str(i),
                 "examples": total, "top1": (tally.class_top1[i] / total) if total else float("nan")})
  return rows


def confused_pairs(confusion: np.ndarray, class_names: Sequence[str], top: int) -> list[dict[str, Any]]:
  """The `top` largest off-diagonal (true → predicted) counts, largest first."""
  off = np.array(confusion, np.int64, copy=True)
  np.fill_diagonal(off, 0)
  flat = np.argsort(-off, axis=None, kind="stable")[:top]
  out = []
  for idx in flat:
    t, p = np.unravel_index(idx, off.shape)
    if off[t, p] == 0:
      break
    total = int(confusion[t].sum())
    out.append({"true": class_names[t], "predicted": class_names[p], "count": int(off[t, p]),
                "fraction_of_true": off[t, p] / total if total else 0.0})
  return out
