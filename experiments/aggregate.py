"""Result tables and learning-curve plots for a sweep.

  python -m experiments.aggregate runs/sweeps/<sweep> [--margin=0.5] [--alpha=0.05]

Reads every member folder's summary.json and metrics.jsonl (or metrics.jsonl.gz), machine.json
where the run wrote one, and (when the sweep runner wrote it) sweep.json for the member order,
overrides, baseline and the paper's reported effects. The members are the sub-folders of the
given folder, or of its runs/ sub-folder (a study's committed raw records). It writes:
  results.md   a table: member, overrides, top-1, top-5, Δ vs the baseline (accuracy points),
               the paper's reported Δ where it has one, wall time, img/s
  results.csv  the same numbers, machine-readable
  curves.png   train loss and eval top-1 against epoch, one line per member
  effects.png  each member's Δ top-1 as a bar, the spread of the baseline's seed replicas
               shaded, and the paper's Δ beside it
and, for a sweep run with `--seeds` (members named `<member>-seed=<k>`), the paired statistics
of experiments/seeds.py: seeds.md, seeds.csv and effects_seeds.png.
The machine and dates a table names are those recorded with the runs (machine.json), never
the machine that aggregates. Public functions for regenerating tables: `render_results_md`,
`render_results_csv`, `render_seeds_md`, `render_seeds_csv` (each takes the sweep folder and
returns the file's text).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import io
import json
import os
import platform
import sys
from typing import Any, Mapping, Sequence

from alexnet_jax import jsonl
from experiments import seeds as seeds_lib
from experiments import sweep_plots


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
  machine: Mapping[str, Any] | None = None  # the run's machine.json: where and when it ran

  @property
  def done(self) -> bool:
    return bool(self.summary and self.summary.get("done"))

  def metric(self, key: str) -> float | None:
    value = ((self.summary or {}).get("eval") or {}).get(key)
    return None if value is None else float(value)

  @property
  def finished(self) -> tuple[str, float] | None:
    """How far the run went: ('step', n) from summary.json, else ('epoch', e) from its eval curve."""
    s = self.summary or {}
    if s.get("step") is not None:
      return "step", float(s["step"])
    if s.get("epoch") is not None:
      return "epoch", float(s["epoch"])
    return ("epoch", self.eval_curve[-1][0]) if self.eval_curve else None

  @property
  def train_loss(self) -> float | None:
    """The final training loss: summary.json's, else the last logged one."""
    value = ((self.summary or {}).get("train") or {}).get("loss")
    if value is not None:
      return float(value)
    return self.train_curve[-1][1] if self.train_curve else None


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


RECORDS = ("summary.json", "metrics.jsonl", "metrics.jsonl.gz")


def _has_records(workdir: str) -> bool:
  return any(os.path.exists(os.path.join(workdir, f)) for f in RECORDS)


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """The rows of a run's metrics.jsonl, or of metrics.jsonl.gz (a committed raw record)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path) or not os.path.exists(path + ".gz"):
    return jsonl.read(path)
  rows = []
  with gzip.open(path + ".gz", "rt") as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except ValueError:
        continue  # blank or torn line
  return rows


def load_members(folder: str) -> tuple[list[MemberResult], str]:
  """Every member of the sweep in `folder` (or in `folder`/runs) and the baseline's name.

  With sweep.json (in either) the member order is the definition's; without it, every
  sub-folder holding a summary.json or metrics.jsonl(.gz) is a member (alphabetical) and the
  baseline is the one called 'baseline', else the first.
  """
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"Sweep folder {folder!r} does not exist; pass <workdir_root>/<sweep name>.")
  plan = _read_json(os.path.join(folder, "sweep.json")) or _read_json(os.path.join(folder, "runs", "sweep.json")) or {}
  if os.path.isdir(os.path.join(folder, "runs")):
    folder = os.path.join(folder, "runs")
  entries = plan.get("members")
  if not entries:
    names = sorted(d for d in os.listdir(folder) if _has_records(os.path.join(folder, d)))
    entries = [{"name": n} for n in names]
  if not entries:
    raise FileNotFoundError(f"No member runs in {folder!r} (no sub-folder has summary.json or metrics.jsonl).")
  members = []
  for e in entries:
    workdir = os.path.join(folder, e["name"])
    if not _has_records(workdir):
      continue  # planned but never started (e.g. left out with --only)
    over = [f"{k}={v}" for k, v in (e.get("args") or {}).items()]
    over += [f"--config.{k}={v}" for k, v in (e.get("overrides") or {}).items()]
    rows = read_metrics(workdir)
    train, evals = curves(rows)
    rates = {int(r["step"]): (float(r["epoch"]), float(r["train/learning_rate"])) for r in rows
             if "train/learning_rate" in r and "step" in r and "epoch" in r}
    members.append(MemberResult(e["name"], " ".join(over) or "(base)", jsonl.read_summary(workdir),
                                train, evals, e.get("paper"), [rates[k] for k in sorted(rates)],
                                _read_json(os.path.join(workdir, "machine.json"))))
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


def csv_text(rows: Sequence[Mapping[str, str]], columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
  out = io.StringIO()
  w = csv.DictWriter(out, fieldnames=[k for k, _ in columns])
  w.writeheader()
  w.writerows(rows)
  return out.getvalue()


def write_csv(rows: Sequence[Mapping[str, str]], path: str) -> None:
  with open(path, "w", newline="") as f:
    f.write(csv_text(rows))


def machine_description() -> str:
  """This host's CPU model (from /proc/cpuinfo where there is one) and core count.

  For records a run writes about itself; tables name the machines of their records
  (`recorded_provenance`), not this one.
  """
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


def _machine_of(record: Mapping[str, Any]) -> str:
  """A machine.json in words: its `description`, else device kind (× count) and CPU."""
  if record.get("description"):
    return str(record["description"])
  device = record.get("device_kind") or record.get("device") or ""
  if device and int(record.get("device_count") or 1) > 1:
    device = f"{record['device_count']}× {device}"
  parts = [str(p) for p in (device, record.get("cpu")) if p and str(p).lower() != "cpu"]
  return ", ".join(parts) or str(record.get("host") or "unnamed machine")


def recorded_provenance(members: Sequence[MemberResult]) -> str:
  """'Machine: … Date: …' from the runs' own machine.json records (several are listed in turn)."""
  records = [m.machine for m in members if isinstance(m.machine, Mapping)]
  if not records:
    return "Machine and date: not recorded with these runs (no machine.json)."
  machines = sorted({_machine_of(r) for r in records})
  dates = sorted({str(r["date"])[:10] for r in records if r.get("date")})
  when = ("not recorded" if not dates else dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}")
  missing = len(members) - len(records)
  note = f" ({missing} run(s) without machine.json)" if missing else ""
  return f"Machine: {'; '.join(machines)}{note}. Date: {when}."


def markdown(rows: Sequence[Mapping[str, str]], baseline: str, title: str, command: str | None = None,
             provenance: str = "Machine and date: not recorded with these runs (no machine.json).") -> str:
  lines = [f"# {title}", "", provenance,
           *( [f"Command: `{command}`"] if command else [] ), "",
           f"Δ = member − `{baseline}` in accuracy points (negative: the change hurt). "
           "Paper Δ: the effect the paper reports on ImageNet, as accuracy points; blank where it gives none.", "",
           "| " + " | ".join(h for _, h in COLUMNS) + " |",
           "|" + "|".join("---" for _ in COLUMNS) + "|"]
  for r in rows:
    lines.append("| " + " | ".join(str(r[k]).replace("|", "\\|") for k, _ in COLUMNS) + " |")
  return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The public functions that regenerate tables from a folder of records.


def _title(folder: str) -> str:
  return f"Sweep `{os.path.basename(os.path.normpath(folder))}`"


def render_results_md(folder: str, command: str | None = None, title: str | None = None) -> str:
  """results.md of the sweep (or study) in `folder`, from its records alone."""
  members, baseline = load_members(folder)
  return markdown(table_rows(members, baseline), baseline, title or _title(folder), command,
                  recorded_provenance(members))


def render_results_csv(folder: str) -> str:
  """results.csv of the sweep (or study) in `folder`."""
  return csv_text(table_rows(*load_members(folder)))


@dataclasses.dataclass(frozen=True)
class SeedOptions:
  """The seed table's parameters, all fixed before the data are seen."""

  min_epochs: float | None = None   # also count runs stopped after at least this many epochs
  alpha: float = 0.05               # family-wise, two-sided
  power: float = 0.8                # for the minimum detectable effect
  margin: float | None = None       # equivalence margin in points; None: no equivalence claims
  num_classes: int | None = None    # for 'did not train' where summary.json lacks it

  def __post_init__(self):
    if not 0 < self.alpha < 0.5:
      raise ValueError(f"alpha must lie in (0, 0.5), got {self.alpha}")
    if not self.alpha < self.power < 1:
      raise ValueError(f"power must lie in (alpha, 1), got {self.power}")
    if self.margin is not None and not self.margin > 0:
      raise ValueError(f"the equivalence margin must be positive, got {self.margin}")


def seed_study(members: Sequence[MemberResult], baseline: str, options: SeedOptions = SeedOptions()):
  """(groups, study) for members run over seeds, or ([], None) when none were."""
  groups = seeds_lib.seed_groups(members, options.min_epochs)
  if not groups:
    return [], None
  return groups, seeds_lib.study(groups, baseline, options.alpha, options.power, options.margin,
                                 options.num_classes)


def _seed_tables(members, baseline, folder, options, command, title) -> tuple[str, str]:
  groups, result = seed_study(members, baseline, options)
  if result is None:
    raise FileNotFoundError(f"No member of {folder!r} is named <member>-seed=<k>: no seed table to write.")
  rows = seeds_lib.seed_rows(groups, result)
  md = seeds_lib.seed_markdown(rows, result, title or _title(folder) + " over seeds", command,
                               options.min_epochs, recorded_provenance(members))
  return md, csv_text(rows, seeds_lib.SEED_COLUMNS)


def render_seeds_md(folder: str, options: SeedOptions = SeedOptions(), command: str | None = None,
                    title: str | None = None) -> str:
  """seeds.md of the sweep (or study) in `folder`: the paired, Holm-corrected seed table."""
  return _seed_tables(*load_members(folder), folder, options, command, title)[0]


def render_seeds_csv(folder: str, options: SeedOptions = SeedOptions()) -> str:
  """seeds.csv of the sweep (or study) in `folder`."""
  return _seed_tables(*load_members(folder), folder, options, None, None)[1]


def aggregate(folder: str, out_dir: str | None = None, command: str | None = None,
              min_epochs: float | None = None, options: SeedOptions | None = None) -> list[str]:
  """Writes the tables and plots for the sweep in `folder` (see the module docstring); returns the paths."""
  options = options or SeedOptions(min_epochs=min_epochs)
  members, baseline = load_members(folder)
  out_dir = out_dir or folder
  os.makedirs(out_dir, exist_ok=True)
  name = os.path.basename(os.path.normpath(folder))
  written = []

  def write(file: str, text: str) -> None:
    path = os.path.join(out_dir, file)
    with open(path, "w", newline="") as f:
      f.write(text)
    written.append(path)

  rows = table_rows(members, baseline)
  write("results.md", markdown(rows, baseline, _title(folder), command, recorded_provenance(members)))
  write("results.csv", csv_text(rows))
  written.append(os.path.join(out_dir, "curves.png"))
  sweep_plots.plot_curves(members, written[-1], f"sweep {name}")
  effects = os.path.join(out_dir, "effects.png")
  if sweep_plots.plot_effects(members, baseline, effects, f"sweep {name}: effect of each change"):
    written.append(effects)
  groups, result = seed_study(members, baseline, options)
  if result is not None:
    md, csv_rows = _seed_tables(members, baseline, folder, options, command, None)
    write("seeds.md", md)
    write("seeds.csv", csv_rows)
    effects = os.path.join(out_dir, "effects_seeds.png")
    if sweep_plots.plot_seed_effects(groups, result, effects, f"sweep {name}: effects over seeds"):
      written.append(effects)
  return written


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.aggregate", description=__doc__.split("\n")[0])
  p.add_argument("folder", help="the sweep folder, <workdir_root>/<sweep> (or a study folder with runs/)")
  p.add_argument("--out", default="", help="where to write the table and plots (default: the sweep folder)")
  p.add_argument("--command", default="", help="the command that produced the runs, recorded in results.md")
  p.add_argument("--min_epochs", type=float, default=None,
                 help="seed statistics also count runs stopped after at least this many epochs")
  p.add_argument("--alpha", type=float, default=0.05, help="family-wise two-sided level of the seed table")
  p.add_argument("--power", type=float, default=0.8, help="power at which the minimum detectable effect is given")
  p.add_argument("--margin", type=float, default=None,
                 help="equivalence margin in top-1 points, fixed beforehand; without it nothing is called equal")
  p.add_argument("--num_classes", type=int, default=None,
                 help="classes, for 'did not train', where a run's summary.json does not say")
  flags = p.parse_args(argv)
  try:
    options = SeedOptions(flags.min_epochs, flags.alpha, flags.power, flags.margin, flags.num_classes)
    written = aggregate(flags.folder, flags.out or None, flags.command or None, options=options)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print("Wrote " + ", ".join(written))
  return 0


if __name__ == "__main__":
  sys.exit(main())
