"""Result tables and learning-curve plots for a sweep.

  python -m experiments.aggregate runs/sweeps/<sweep>

Reads every member folder's summary.json and metrics.jsonl (and, when the sweep runner wrote
it, sweep.json for the member order, overrides, baseline and the paper's reported effects) and
writes, into the sweep folder:
  results.md   a table: member, overrides, top-1, top-5, Δ vs the baseline (accuracy points),
               the paper's reported Δ where it has one, wall time, img/s
  results.csv  the same numbers, machine-readable
  curves.png   train loss and eval top-1 against epoch, one line per member
  effects.png  each member's Δ top-1 as a bar, the seed-noise band (from members that differ
               from the baseline only in `seed`) shaded, and the paper's Δ beside it
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import os
import platform
import re
import sys
from typing import Any, Mapping, Sequence

from alexnet_jax import jsonl


@dataclasses.dataclass
class MemberResult:
  """What the table and plots need from one member's folder."""

  name: str
  overrides: str
  summary: dict[str, Any] | None
  train_curve: list[tuple[float, float]]  # (epoch, train loss)
  eval_curve: list[tuple[float, float]]   # (epoch, eval top-1)
  paper: Mapping[str, Any] | None = None

  @property
  def done(self) -> bool:
    return bool(self.summary and self.summary.get("done"))

  def metric(self, key: str) -> float | None:
    value = ((self.summary or {}).get("eval") or {}).get(key)
    return None if value is None else float(value)


def curves(rows: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
  """(epoch, train/loss) and (epoch, eval/top1) series, in step order, last write per step winning.

  A resumed run may log a step twice; keeping the last value makes the curve single-valued.
  """
  train: dict[int, tuple[float, float]] = {}
  evals: dict[int, tuple[float, float]] = {}
  for r in rows:
    if "epoch" not in r or "step" not in r:
      continue
    if "train/loss" in r:
      train[int(r["step"])] = (float(r["epoch"]), float(r["train/loss"]))
    if "eval/top1" in r:
      evals[int(r["step"])] = (float(r["epoch"]), float(r["eval/top1"]))
  return [train[s] for s in sorted(train)], [evals[s] for s in sorted(evals)]


def _read_json(path: str) -> Any:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def load_members(folder: str) -> tuple[list[MemberResult], str]:
  """Every member of the sweep in `folder` and the baseline's name.

  With sweep.json the member order is the definition's; without it, every sub-folder holding
  a summary.json or metrics.jsonl is a member (alphabetical) and the baseline is the one called
  'baseline', else the first.
  """
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"Sweep folder {folder!r} does not exist; pass <workdir_root>/<sweep name>.")
  plan = _read_json(os.path.join(folder, "sweep.json")) or {}
  entries = plan.get("members")
  if not entries:
    names = sorted(d for d in os.listdir(folder)
                   if any(os.path.exists(os.path.join(folder, d, f)) for f in ("summary.json", "metrics.jsonl")))
    entries = [{"name": n} for n in names]
  if not entries:
    raise FileNotFoundError(f"No member runs in {folder!r} (no sub-folder has summary.json or metrics.jsonl).")
  members = []
  for e in entries:
    workdir = os.path.join(folder, e["name"])
    if not any(os.path.exists(os.path.join(workdir, f)) for f in ("summary.json", "metrics.jsonl")):
      continue  # planned but never started (e.g. left out with --only)
    over = [f"{k}={v}" for k, v in (e.get("args") or {}).items()]
    over += [f"--config.{k}={v}" for k, v in (e.get("overrides") or {}).items()]
    train, evals = curves(jsonl.read(os.path.join(workdir, "metrics.jsonl")))
    members.append(MemberResult(e["name"], " ".join(over) or "(base)", jsonl.read_summary(workdir),
                                train, evals, e.get("paper")))
  if not members:
    raise FileNotFoundError(f"No member of the sweep in {folder!r} has started (no summary.json or metrics.jsonl).")
  names = [m.name for m in members]
  baseline = plan.get("baseline") or ("baseline" if "baseline" in names else names[0])
  return members, baseline


def _points(value: float | None) -> str:
  return "" if value is None else f"{value:+.2f}"


def _pct(value: float | None) -> str:
  return "" if value is None else f"{100 * value:.2f}"


def table_rows(members: Sequence[MemberResult], baseline: str) -> list[dict[str, str]]:
  """One row per member; Δ is (member − baseline) accuracy in points, so negative means worse."""
  base = next((m for m in members if m.name == baseline), None)
  rows = []
  for m in members:
    row = {"member": m.name, "overrides": m.overrides,
           "status": "done" if m.done else ("partial" if m.summary or m.train_curve else "missing")}
    for k in ("top1", "top5"):
      value, ref = m.metric(k), base.metric(k) if base else None
      row[k] = _pct(value)
      row[f"d_{k}"] = "" if value is None or ref is None or m is base else _points(100 * (value - ref))
      row[f"paper_d_{k}"] = _points((m.paper or {}).get(k))
    row["paper_note"] = (m.paper or {}).get("note", "")
    s = m.summary or {}
    row["epochs"] = "" if s.get("epoch") is None else f"{float(s['epoch']):.2f}"
    row["wall_s"] = "" if s.get("wall_s") is None else f"{float(s['wall_s']):.0f}"
    row["img_per_s"] = "" if s.get("img_per_s") is None else f"{float(s['img_per_s']):.0f}"
    rows.append(row)
  return rows


COLUMNS = [("member", "member"), ("overrides", "overrides"), ("status", "status"), ("top1", "top-1 %"),
           ("top5", "top-5 %"), ("d_top1", "Δ top-1 (pts)"), ("d_top5", "Δ top-5 (pts)"),
           ("paper_d_top1", "paper Δ top-1"), ("paper_d_top5", "paper Δ top-5"), ("epochs", "epochs"),
           ("wall_s", "wall s"), ("img_per_s", "img/s"), ("paper_note", "paper says")]


def write_csv(rows: Sequence[Mapping[str, str]], path: str) -> None:
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=[k for k, _ in COLUMNS])
    w.writeheader()
    w.writerows(rows)


def machine_description() -> str:
  """The CPU model (from /proc/cpuinfo where there is one) and core count, for provenance."""
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return f"{model}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} CPU(s)"


def markdown(rows: Sequence[Mapping[str, str]], baseline: str, title: str, command: str | None = None) -> str:
  lines = [f"# {title}", "",
           f"Machine: {machine_description()}. Date: {datetime.date.today().isoformat()}.",
           *( [f"Command: `{command}`"] if command else [] ), "",
           f"Δ = member − `{baseline}` in accuracy points (negative: the change hurt). "
           "Paper Δ: the effect the paper reports on ImageNet, as accuracy points; blank where it gives none.", "",
           "| " + " | ".join(h for _, h in COLUMNS) + " |",
           "|" + "|".join("---" for _ in COLUMNS) + "|"]
  for r in rows:
    lines.append("| " + " | ".join(str(r[k]).replace("|", "\\|") for k, _ in COLUMNS) + " |")
  return "\n".join(lines) + "\n"


def plot_curves(members: Sequence[MemberResult], path: str, title: str = "") -> None:
  """Two panels: train loss and eval top-1 against epoch, one colour per member."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, (ax_loss, ax_top1) = plt.subplots(1, 2, figsize=(13, 4.5))
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
  ax.axvline(0, color="black", lw=0.8)
  ax.set_yticks(y, [m.name for m in shown])
  ax.invert_yaxis()
  ax.set_xlabel(f"Δ {key.replace('top', 'top-')} vs {baseline} (accuracy points; negative: the change hurt)")
  ax.grid(axis="x", alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


def aggregate(folder: str, out_dir: str | None = None, command: str | None = None) -> list[str]:
  """Writes results.md, results.csv and curves.png for the sweep in `folder`; returns the paths."""
  members, baseline = load_members(folder)
  out_dir = out_dir or folder
  os.makedirs(out_dir, exist_ok=True)
  name = os.path.basename(os.path.normpath(folder))
  rows = table_rows(members, baseline)
  md, csv_path, png = (os.path.join(out_dir, f) for f in ("results.md", "results.csv", "curves.png"))
  with open(md, "w") as f:
    f.write(markdown(rows, baseline, f"Sweep `{name}`", command))
  write_csv(rows, csv_path)
  plot_curves(members, png, f"sweep {name}")
  effects = os.path.join(out_dir, "effects.png")
  if plot_effects(members, baseline, effects, f"sweep {name}: effect of each change"):
    return [md, csv_path, png, effects]
  return [md, csv_path, png]


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.aggregate", description=__doc__.split("\n")[0])
  p.add_argument("folder", help="the sweep folder, <workdir_root>/<sweep>")
  p.add_argument("--out", default="", help="where to write the table and plots (default: the sweep folder)")
  p.add_argument("--command", default="", help="the command that produced the runs, recorded in results.md")
  flags = p.parse_args(argv)
  try:
    written = aggregate(flags.folder, flags.out or None, flags.command or None)
  except FileNotFoundError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print("Wrote " + ", ".join(written))
  return 0


if __name__ == "__main__":
  sys.exit(main())
