"""The sweep's plots: learning curves, each member's effect, and the seed study's effects.

Called by experiments/aggregate.py; each function writes one PNG.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Sequence

from experiments import seeds as seeds_lib

if TYPE_CHECKING:
  from experiments.aggregate import MemberResult


def plot_curves(members: Sequence[MemberResult], path: str, title: str = "") -> None:
  """Two panels: train loss and eval top-1 against epoch, one colour per member."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  with_lr = any(m.lr_curve for m in members)
  fig, axes = plt.subplots(1, 3 if with_lr else 2, figsize=(19 if with_lr else 13, 4.5))
  ax_loss, ax_top1 = axes[0], axes[1]
  # tab10 repeats after ten members; tab20 keeps up to twenty distinct.
  colours = plt.get_cmap("tab10" if len(members) <= 10 else "tab20").colors
  for i, m in enumerate(members):
    c = colours[i % len(colours)]
    if m.train_curve:
      few = len(m.train_curve) < 20  # markers keep short (or one-point) curves visible
      ax_loss.plot(*zip(*m.train_curve), label=m.name, lw=1.2, marker="." if few else None, color=c)
    if m.eval_curve:
      ep, top1 = zip(*m.eval_curve)
      ax_top1.plot(ep, [100 * t for t in top1], marker="o", ms=3, label=m.name, lw=1.2, color=c)
    if with_lr and m.lr_curve:
      axes[2].plot(*zip(*m.lr_curve), lw=1.2, color=c)
  if with_lr:
    axes[2].set(xlabel="epoch", ylabel="learning rate", title="learning rate (log scale)", yscale="log")
    axes[2].grid(alpha=0.3)
  ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss")
  ax_top1.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="validation top-1")
  for ax in (ax_loss, ax_top1):
    ax.grid(alpha=0.3)
  ax_top1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def seed_replicas(members: Sequence[MemberResult], baseline: str) -> list[MemberResult]:
  """Members that differ from the baseline only in their seed (their spread is the noise)."""
  return [m for m in members if m.name != baseline and re.fullmatch(r"seed=\d+", m.overrides)]


def seed_noise(members: Sequence[MemberResult], baseline: str, key: str = "top1") -> float | None:
  """Half-width of the seed-noise band, in points: the largest |Δ| of a seed replica, or None."""
  base = next((m for m in members if m.name == baseline), None)
  ref = base.metric(key) if base else None
  deltas = [abs(100 * (m.metric(key) - ref)) for m in seed_replicas(members, baseline)
            if ref is not None and m.metric(key) is not None]
  return max(deltas) if deltas else None


def plot_effects(members: Sequence[MemberResult], baseline: str, path: str, title: str = "",
                 key: str = "top1") -> bool:
  """A bar per member: its Δ top-1 vs the baseline, the seed-noise band, the paper's Δ beside it.

  Returns False (and writes nothing) when there is no finished baseline or nothing to compare.
  """
  base = next((m for m in members if m.name == baseline), None)
  ref = base.metric(key) if base else None
  replicas = {m.name for m in seed_replicas(members, baseline)}
  shown = [m for m in members if m.name != baseline and m.name not in replicas and m.metric(key) is not None]
  if ref is None or not shown:
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  ours = [100 * (m.metric(key) - ref) for m in shown]
  paper = [(m.paper or {}).get(key) for m in shown]
  noise = seed_noise(members, baseline, key)
  fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1.6))
  y = list(range(len(shown)))
  if noise is not None:
    ax.axvspan(-noise, noise, color="0.85", zorder=0,
               label=f"seed noise (±{noise:.1f} pts, {len(replicas)} other seed(s))")
  ax.barh([i - 0.18 for i in y], ours, height=0.36, color=["tab:green" if d >= 0 else "tab:red" for d in ours],
          label="this run", zorder=2)
  has_paper = [(i, p) for i, p in zip(y, paper) if p is not None]
  if has_paper:
    ax.barh([i + 0.18 for i, _ in has_paper], [p for _, p in has_paper], height=0.36, color="tab:blue",
            alpha=0.6, label="paper (ImageNet)", zorder=2)
  _finish_effects(fig, ax, [m.name for m in shown],
                  f"Δ {key.replace('top', 'top-')} vs {baseline} (accuracy points; negative: the change hurt)",
                  title, path)
  return True


def _finish_effects(fig, ax, names: Sequence[str], xlabel: str, title: str, path: str) -> None:
  """The effect charts' common frame: zero line, one row per member (first at the top), saved."""
  import matplotlib.pyplot as plt
  ax.axvline(0, color="black", lw=0.8)
  ax.set_yticks(range(len(names)), names)
  ax.invert_yaxis()
  ax.set_xlabel(xlabel)
  ax.grid(axis="x", alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


OFF_SCALE_PTS = 20.0  # |Δ| beyond this is a run that did not train, not an effect


def plot_seed_effects(groups: Sequence[seeds_lib.Group], result: seeds_lib.SeedStudy, path: str,
                      title: str = "") -> bool:
  """Paired Δ top-1 per member with its Holm interval, each seed's d as a dot, the paper's Δ beside.

  Members without a verdict (did not train, not comparable) are named with the reason at 0.
  Returns False (and writes nothing) when no member has a pair with the baseline.
  """
  shown = [g for g in groups if g.name != result.baseline and g.name in result.comparisons]
  if not any(result.comparisons[g.name].pairs.n for g in shown):
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  comps = {g.name: result.comparisons[g.name] for g in shown}
  spans = [abs(x) for c in comps.values() if c.pairs.n for x in (*(c.corrected or ()), c.pairs.mean)
           if abs(x) <= OFF_SCALE_PTS]
  spans += [abs((g.paper or {}).get("top1") or 0) for g in shown]
  limit = max(3.0, 1.15 * max(spans or [1.0]))
  fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(shown) + 1.8))
  labelled: set[str] = set()

  def label(text: str) -> str | None:
    if text in labelled:
      return None
    labelled.add(text)
    return text

  for i, g in enumerate(shown):
    c = comps[g.name]
    paper = (g.paper or {}).get("top1")
    if paper is not None:
      ax.barh(i + 0.18, paper, height=0.36, color="tab:blue", alpha=0.6, zorder=2, label=label("paper (ImageNet)"))
    if c.status in ("did not train", "not comparable") or not c.pairs.n:
      ax.text(0, i - 0.18, f"  {c.status}", va="center", ha="left", fontsize=8, color="0.3")
      continue
    delta = c.pairs.mean
    colour = "tab:green" if delta >= 0 else "tab:red"
    if abs(delta) > limit:
      edge = math.copysign(limit, delta)
      ax.barh(i - 0.18, edge, height=0.36, color=colour, alpha=0.35, hatch="//", zorder=2)
      ax.text(edge * 0.97, i - 0.18, f"{delta:+.0f} (off scale)", va="center",
              ha="left" if delta < 0 else "right", fontsize=8)
      continue
    ax.barh(i - 0.18, delta, height=0.36, color=colour, alpha=0.8, zorder=2, label=label("Δ (paired mean)"))
    if c.corrected is not None:
      lo, hi = c.corrected
      ax.errorbar(delta, i - 0.18, xerr=[[delta - lo], [hi - delta]], color="black", capsize=3, lw=1, zorder=3,
                  label=label("Holm-corrected t interval"))
    ax.plot(list(c.pairs.diffs), [i - 0.18] * c.pairs.n, "o", ms=3.5, color="black", zorder=4,
            label=label("each seed's d"))
  ax.set_xlim(-limit, limit)
  _finish_effects(fig, ax, [f"{g.name} (n={comps[g.name].pairs.n})" for g in shown],
                  f"Δ top-1 vs {result.baseline}, accuracy points, paired by seed; negative: the change hurt",
                  title, path)
  return True
