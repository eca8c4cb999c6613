"""The PNGs of what a network learned: kernel mosaics, colour-score histograms, neighbour grids.

Kernels are drawn as the 2012 paper's Figure 3 draws them: every kernel scaled to its own range
(its minimum black, its maximum white), one block per tower, pixels shown as squares (no smoothing,
so aliasing in the kernels stays visible). Kernels that do not read 3 colour channels are drawn in
grey, averaged over their input channels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

COLUMNS = 16  # kernels per row of a tower block (the paper's Figure 3 draws 48 per GPU as 3 × 16)
MAX_GRID_ROWS = 32  # queries drawn in one neighbour grid (a picture, not a listing)


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def scaled_kernels(kernel: np.ndarray) -> np.ndarray:
  """HWIO [h, w, in, n] → [n, h, w, 3] in [0, 1], each kernel scaled to its own min..max."""
  k = np.asarray(kernel, np.float64)
  if k.shape[2] != 3:
    k = np.repeat(k.mean(axis=2, keepdims=True), 3, axis=2)
  k = np.moveaxis(k, 3, 0)
  lo = k.min(axis=(1, 2, 3), keepdims=True)
  span = k.max(axis=(1, 2, 3), keepdims=True) - lo
  return np.where(span > 0, (k - lo) / np.where(span > 0, span, 1.0), 0.5)


def mosaic(images: np.ndarray, columns: int, gap: int = 1, fill: float = 1.0) -> np.ndarray:
  """[n, h, w, 3] → one [rows·(h+gap)−gap, columns·(w+gap)−gap, 3] picture, row by row."""
  n, h, w, c = images.shape
  columns = max(1, min(columns, n))
  rows = -(-n // columns)
  out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, c), fill, images.dtype)
  for i, img in enumerate(images):
    r, col = divmod(i, columns)
    out[r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = img
  return out


def kernel_mosaic(kernel: np.ndarray, towers: int, path: str, title: str = "",
                  scores: np.ndarray | None = None) -> None:
  """Writes the kernels of an HWIO array as one block per tower (tower t = output channels
  [t·n/towers, (t+1)·n/towers)); with `scores` (one per kernel) each block is titled with their mean."""
  plt = _pyplot()
  images = scaled_kernels(kernel)
  n, h = images.shape[0], images.shape[1]
  per = n // towers
  blocks = [mosaic(images[t * per:(t + 1) * per], COLUMNS) for t in range(towers)]
  width = max(b.shape[1] for b in blocks)
  scale = max(0.06, 6.0 / width)  # inches per kernel pixel: small kernels are blown up
  heights = [b.shape[0] for b in blocks]
  fig, axes = plt.subplots(towers, 1, squeeze=False, gridspec_kw={"height_ratios": heights},
                           figsize=(width * scale + 0.6, sum(heights) * scale + 0.6 * towers + 0.4))
  for t, (ax, block) in enumerate(zip(axes[:, 0], blocks)):
    ax.imshow(block, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    label = f"tower {t} (kernels {t * per}–{(t + 1) * per - 1})" if towers > 1 else f"{n} kernels"
    if scores is not None:
      part = scores[t * per:(t + 1) * per]
      label += f": colour score mean {part.mean():.2f}, median {np.median(part):.2f}"
    ax.set_title(label, fontsize=9)
  if title:
    fig.suptitle(f"{title} ({h}×{h})", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def score_histograms(sets: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str) -> None:
  """One panel per (label, scores, tower of each kernel): the towers' score histograms overlaid."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(sets), squeeze=False, figsize=(4.0 * len(sets), 3.2), sharey=True)
  bins = np.linspace(0.0, 1.0, 21)
  for ax, (label, scores, tower) in zip(axes[0], sets):
    for t in np.unique(tower):
      part = scores[tower == t]
      ax.hist(part, bins=bins, alpha=0.55, label=f"tower {t} (median {np.median(part):.2f})")
    ax.set(title=label, xlabel="colour score ||w − g||² / ||w||²", xlim=(0, 1))
    ax.legend(fontsize=8)
  axes[0][0].set_ylabel("kernels")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def neighbour_grid(queries: np.ndarray, neighbours: np.ndarray, distances: np.ndarray, path: str, *,
                   title: str, query_names: Sequence[str], neighbour_names: Sequence[Sequence[str]]) -> None:
  """One row per query: the query (framed), then its k nearest images with their class and distance.

  queries [q, s, s, 3] and neighbours [q, k, s, s, 3] are uint8 pictures; distances [q, k].
  """
  plt = _pyplot()
  q, k = neighbours.shape[:2]
  fig, axes = plt.subplots(q, k + 1, squeeze=False, figsize=(1.35 * (k + 1), 1.65 * q + 0.5))
  for r in range(q):
    ax = axes[r, 0]
    ax.imshow(queries[r], interpolation="nearest")
    ax.set_title(f"query: {query_names[r]}"[:24], fontsize=7, color="tab:red")
    for spine in ax.spines.values():
      spine.set(color="tab:red", linewidth=2.5)
    for j in range(k):
      ax = axes[r, j + 1]
      ax.imshow(neighbours[r, j], interpolation="nearest")
      ax.set_title(f"{neighbour_names[r][j]}"[:16] + f"\nd={distances[r, j]:.3g}", fontsize=7)
    for ax in axes[r]:
      ax.set_xticks([])
      ax.set_yticks([])
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def kernels_over_steps(kernels: Sequence[np.ndarray], labels: Sequence[str], towers: int, path: str,
                       title: str = "") -> None:
  """One row per checkpoint: all of its kernels side by side (a wider gap between towers), to watch
  the filters form over training."""
  plt = _pyplot()
  rows = []
  for kernel in kernels:
    images = scaled_kernels(kernel)
    per = images.shape[0] // towers
    parts = [mosaic(images[t * per:(t + 1) * per], per) for t in range(towers)]
    gap = np.ones((parts[0].shape[0], 3 * images.shape[1] // 2 + 1, 3))
    rows.append(np.concatenate([p for part in parts for p in (part, gap)][:-1], axis=1))
  height, width = rows[0].shape[:2]
  scale = min(0.05, 16.0 / width)
  size = (width * scale + 1.2, len(rows) * (height * scale + 0.25) + 0.4)
  fig, axes = plt.subplots(len(rows), 1, squeeze=False, figsize=size)
  for ax, row, label in zip(axes[:, 0], rows, labels):
    ax.imshow(row, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
