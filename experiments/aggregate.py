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
and, for a sweep run with `--seeds` (members named `<member>-seed=<k>`):
  seeds.md     per member: seeds counted, top-1 / top-5 mean ± standard deviation, Δ vs the
  seeds.csv    baseline's mean with its noise band, whether the effect is resolved (outside the
               band) and whether its sign matches the paper's
  effects_seeds.png  those Δs with their bands, each seed's Δ as a dot, the paper's Δ beside
The noise band of a Δ is ±2·s·√(1/n₁ + 1/n₂): s is the within-member standard deviation pooled
over every member with two or more counted seeds, n₁ and n₂ the two members' seed counts.
A run counts when it finished, or (with `--min_epochs`) when it ran at least that many epochs.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import math
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
  lr_curve: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # (epoch, learning rate)

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
    rows = jsonl.read(os.path.join(workdir, "metrics.jsonl"))
    train, evals = curves(rows)
    rates = {int(r["step"]): (float(r["epoch"]), float(r["train/learning_rate"])) for r in rows
             if "train/learning_rate" in r and "step" in r and "epoch" in r}
    members.append(MemberResult(e["name"], " ".join(over) or "(base)", jsonl.read_summary(workdir),
                                train, evals, e.get("paper"), [rates[k] for k in sorted(rates)]))
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


# ---------------------------------------------------------------------------------------------
# Seeds: members run once per seed (`experiments.sweep --seeds`).


@dataclasses.dataclass
class Group:
  """One member over its seeds: the counted runs' final metrics, by seed."""

  name: str
  runs: dict[int, MemberResult]
  skipped: dict[int, str]  # seed → why it was not counted
  paper: Mapping[str, Any] | None = None

  def values(self, key: str) -> dict[int, float]:
    return {s: 100 * m.metric(key) for s, m in self.runs.items() if m.metric(key) is not None}


def _epochs(m: MemberResult) -> float:
  s = m.summary or {}
  if s.get("epoch") is not None:
    return float(s["epoch"])
  return m.eval_curve[-1][0] if m.eval_curve else 0.0


def seed_groups(members: Sequence[MemberResult], min_epochs: float | None = None) -> list[Group]:
  """Members named `<name>-seed=<k>` gathered by name (in sweep order); [] if none are."""
  groups: dict[str, Group] = {}
  for m in members:
    match = re.search(r"-seed=(\d+)$", m.name)
    if not match:
      continue
    name, seed = m.name[:match.start()], int(match.group(1))
    g = groups.setdefault(name, Group(name, {}, {}, m.paper))
    if m.done or (min_epochs is not None and _epochs(m) >= min_epochs):
      g.runs[seed] = m
    else:
      g.skipped[seed] = f"stopped at epoch {_epochs(m):.0f}"
  return list(groups.values())


def _mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
  n = len(values)
  mean = sum(values) / n
  return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None)


def pooled_sd(groups: Sequence[Group], key: str = "top1") -> tuple[float | None, int]:
  """Within-member standard deviation pooled over members with ≥ 2 counted seeds, and its degrees of freedom."""
  ss, dof = 0.0, 0
  for g in groups:
    v = list(g.values(key).values())
    if len(v) >= 2:
      mean = sum(v) / len(v)
      ss += sum((x - mean) ** 2 for x in v)
      dof += len(v) - 1
  return (math.sqrt(ss / dof), dof) if dof else (None, 0)


def seed_rows(groups: Sequence[Group], baseline: str) -> list[dict[str, str]]:
  """One row per member: mean ± sd over counted seeds, Δ vs the baseline with its band, verdicts."""
  base = next((g for g in groups if g.name == baseline), None)
  s, _ = pooled_sd(groups)
  b = list(base.values("top1").values()) if base else []
  rows = []
  for g in groups:
    row = {"member": g.name, "seeds": ",".join(map(str, sorted(g.runs))) or "-",
           "not_counted": "; ".join(f"seed {s}: {why}" for s, why in sorted(g.skipped.items()))}
    for key in ("top1", "top5"):
      v = list(g.values(key).values())
      if v:
        mean, sd = _mean_sd(v)
        row[key] = f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")
      else:
        row[key] = ""
    row["d_top1"] = row["band"] = row["resolved"] = row["sign"] = ""
    paper = (g.paper or {}).get("top1")
    row["paper_d_top1"] = _points(paper)
    v = list(g.values("top1").values())
    if g is not base and v and b:
      delta = sum(v) / len(v) - sum(b) / len(b)
      row["d_top1"] = _points(delta)
      if s is not None:
        band = 2 * s * math.sqrt(1 / len(v) + 1 / len(b))
        row["band"] = f"±{band:.2f}"
        resolved = abs(delta) > band
        row["resolved"] = "yes" if resolved else "no"
        if paper is not None:
          row["sign"] = ("matches" if (delta > 0) == (paper > 0) else "opposite") if resolved else "unresolved"
    row["paper_note"] = (g.paper or {}).get("note", "")
    rows.append(row)
  return rows


SEED_COLUMNS = [("member", "member"), ("seeds", "seeds counted"), ("top1", "top-1 % (mean ± sd)"),
                ("top5", "top-5 % (mean ± sd)"), ("d_top1", "Δ top-1 (pts)"), ("band", "noise band"),
                ("resolved", "resolved"), ("paper_d_top1", "paper Δ top-1"), ("sign", "sign vs paper"),
                ("not_counted", "not counted"), ("paper_note", "paper says")]


def seed_markdown(rows: Sequence[Mapping[str, str]], groups: Sequence[Group], baseline: str, title: str,
                  command: str | None, min_epochs: float | None) -> str:
  s, dof = pooled_sd(groups)
  rule = ("finished runs" if min_epochs is None else f"finished runs and runs stopped after at least {min_epochs:g} epochs")
  lines = [f"# {title}", "", f"Machine: {machine_description()}. Date: {datetime.date.today().isoformat()}.",
           *([f"Command: `{command}`"] if command else []), "",
           f"Counted: {rule}. Δ = member mean − `{baseline}` mean, in top-1 accuracy points (negative: the "
           "change hurt). Noise band: ±2·s·√(1/n₁ + 1/n₂) with s = "
           + (f"{s:.2f} pts, the within-member standard deviation pooled over {dof} degree(s) of freedom"
              if s is not None else "unknown (no member has two counted seeds)")
           + ". Resolved: |Δ| outside the band. Paper Δ: the ImageNet effect the paper reports.", "",
           "| " + " | ".join(h for _, h in SEED_COLUMNS) + " |", "|" + "|".join("---" for _ in SEED_COLUMNS) + "|"]
  for r in rows:
    lines.append("| " + " | ".join(str(r[k]).replace("|", "\\|") for k, _ in SEED_COLUMNS) + " |")
  return "\n".join(lines) + "\n"


OFF_SCALE_PTS = 20.0  # |Δ| beyond this is a run that did not train, not an effect


def plot_seed_effects(groups: Sequence[Group], baseline: str, path: str, title: str = "") -> bool:
  """Mean Δ top-1 per member with its noise band, each seed's Δ as a dot, the paper's Δ beside."""
  base = next((g for g in groups if g.name == baseline), None)
  b = list(base.values("top1").values()) if base else []
  shown = [g for g in groups if g is not base and g.values("top1")]
  if not b or not shown:
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  ref = sum(b) / len(b)
  s, _ = pooled_sd(groups)
  deltas = {g.name: sum(g.values("top1").values()) / len(g.values("top1")) - ref for g in shown}
  # Runs that did not train at all (tens of points) would flatten every real effect: they are
  # drawn to the edge of a scale set by the others, with their value written beside them.
  small = [abs(d) for d in deltas.values() if abs(d) <= OFF_SCALE_PTS]
  small += [abs((g.paper or {}).get("top1") or 0) for g in shown]
  limit = max(3.0, 1.4 * max(small or [1.0]) + (2 * s if s else 0))
  fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(shown) + 1.8))
  labelled: set[str] = set()

  def label(text: str) -> str | None:
    if text in labelled:
      return None
    labelled.add(text)
    return text

  for i, g in enumerate(shown):
    v = list(g.values("top1").values())
    delta = deltas[g.name]
    colour = "tab:green" if delta >= 0 else "tab:red"
    if abs(delta) > limit:
      edge = math.copysign(limit, delta)
      ax.barh(i - 0.18, edge, height=0.36, color=colour, alpha=0.35, hatch="//", zorder=2)
      ax.text(edge * 0.97, i - 0.18, f"{delta:+.0f} (off scale)", va="center",
              ha="left" if delta < 0 else "right", fontsize=8)
    else:
      ax.barh(i - 0.18, delta, height=0.36, color=colour, alpha=0.8, zorder=2, label=label("this codebase (mean)"))
      if s is not None:
        band = 2 * s * math.sqrt(1 / len(v) + 1 / len(b))
        ax.errorbar(delta, i - 0.18, xerr=band, color="black", capsize=3, lw=1, zorder=3,
                    label=label("noise band (±2 s.e.)"))
      ax.plot([x - ref for x in v], [i - 0.18] * len(v), "o", ms=3.5, color="black", zorder=4,
              label=label("each seed"))
    paper = (g.paper or {}).get("top1")
    if paper is not None:
      ax.barh(i + 0.18, paper, height=0.36, color="tab:blue", alpha=0.6, zorder=2, label=label("paper (ImageNet)"))
  ax.set_xlim(-limit, limit)
  _finish_effects(fig, ax, [f"{g.name} (n={len(g.values('top1'))})" for g in shown],
                  f"Δ top-1 vs {baseline} (n={len(b)}), accuracy points; negative: the change hurt", title, path)
  return True


def aggregate(folder: str, out_dir: str | None = None, command: str | None = None,
              min_epochs: float | None = None) -> list[str]:
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
  written = [md, csv_path, png]
  effects = os.path.join(out_dir, "effects.png")
  if plot_effects(members, baseline, effects, f"sweep {name}: effect of each change"):
    written.append(effects)
  groups = seed_groups(members, min_epochs)
  if groups:
    rows = seed_rows(groups, baseline)
    path = os.path.join(out_dir, "seeds.md")
    with open(path, "w") as f:
      f.write(seed_markdown(rows, groups, baseline, f"Sweep `{name}` over seeds", command, min_epochs))
    with open(os.path.join(out_dir, "seeds.csv"), "w", newline="") as f:
      w = csv.DictWriter(f, fieldnames=[k for k, _ in SEED_COLUMNS])
      w.writeheader()
      w.writerows(rows)
    written += [path, os.path.join(out_dir, "seeds.csv")]
    effects = os.path.join(out_dir, "effects_seeds.png")
    if plot_seed_effects(groups, baseline, effects, f"sweep {name}: effects over seeds"):
      written.append(effects)
  return written


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.aggregate", description=__doc__.split("\n")[0])
  p.add_argument("folder", help="the sweep folder, <workdir_root>/<sweep>")
  p.add_argument("--out", default="", help="where to write the table and plots (default: the sweep folder)")
  p.add_argument("--command", default="", help="the command that produced the runs, recorded in results.md")
  p.add_argument("--min_epochs", type=float, default=None,
                 help="seed statistics also count runs stopped after at least this many epochs")
  flags = p.parse_args(argv)
  try:
    written = aggregate(flags.folder, flags.out or None, flags.command or None, flags.min_epochs)
  except FileNotFoundError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print("Wrote " + ", ".join(written))
  return 0


if __name__ == "__main__":
  sys.exit(main())
