"""AlexNet's Figure 1: training error against epochs for the ReLU and tanh CIFAR-10 nets.

  python -m experiments.figure1 <root>/figure1 [--out <folder>] [--threshold 0.25]

<root>/figure1 holds the two runs made by `python -m experiments.sweep experiments/sweeps/figure1.py`
(folders relu/ and tanh/). Training error is measured over each epoch: the trainer logs the
running training top-1 of each log interval (the weights change during the epoch, as in the
paper's curves), and an epoch's error is the step-weighted mean of the intervals that end in
it. "Epochs to reach the threshold" is the first whole epoch whose error is at or below it.
If a run never reaches the threshold, its count is only known to exceed the epochs it ran,
and the speed-up is reported as a lower bound.

Writes figure1.png (the paper's layout: both curves, a dashed line at the threshold),
figure1.json (per-epoch errors, epochs to threshold, the ratio) and figure1.md (the same as a
table, with the machine, the date and the command).

A learning-rate sweep (experiments/sweeps/figure1_lr.py: members `<setup>-<act>-lr=<rate>`) is
read the paper's way: per setup and activation, the rate that reaches the threshold in the fewest
epochs (ties: the lower final error) is that net's rate, and the speed-up compares the two chosen
nets. Where a net's fastest rate is the lowest or highest of its grid, a rate outside the grid may
be faster, so the ratio is only a bound (an upper one for tanh, a lower one for ReLU). `finish_grid`
recomputes all of this from a figure1.json's per-rate epoch errors. figure1.png then has one panel per setup, the chosen curves bold and the other rates thin.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import textwrap
from typing import Any, Mapping, Sequence

from alexnet_jax import jsonl
from experiments import aggregate


def epoch_errors(rows: Sequence[Mapping[str, Any]]) -> list[float]:
  """Training error of each whole epoch (index 0 = epoch 1) from metrics.jsonl rows.

  Each train row at step s covers the steps since the previous train row; rows whose interval
  ends in epoch e (steps ((e−1)·n, e·n]) contribute, weighted by their length. Epochs that are
  not finished (fewer logged steps than a whole epoch) are left out.
  """
  train = {}
  for r in rows:
    if "train/top1" in r and "step" in r and "epoch" in r:
      train[int(r["step"])] = (float(r["epoch"]), float(r["train/top1"]))  # a resumed step: last wins
  if not train:
    return []
  steps = sorted(train)
  per_epoch = _steps_per_epoch(train)
  sums: dict[int, float] = {}
  counts: dict[int, int] = {}
  prev = 0
  for s in steps:
    e = math.ceil(s / per_epoch)
    n = s - prev
    sums[e] = sums.get(e, 0.0) + n * (1.0 - train[s][1])
    counts[e] = counts.get(e, 0) + n
    prev = s
  out = []
  for e in range(1, max(counts) + 1):
    if counts.get(e, 0) < per_epoch:
      break
    out.append(sums[e] / counts[e])
  return out


def _steps_per_epoch(train: Mapping[int, tuple[float, float]]) -> int:
  for s, (epoch, _) in sorted(train.items(), reverse=True):
    if epoch > 0:
      return max(1, round(s / epoch))
  raise ValueError("metrics.jsonl has no row with a positive epoch; cannot tell the epoch length.")


def epochs_to(errors: Sequence[float], threshold: float) -> int | None:
  """The first epoch (1-based) with error ≤ threshold, or None if none reaches it."""
  return next((i + 1 for i, err in enumerate(errors) if err <= threshold), None)


def speedup(relu: int | None, tanh: int | None, tanh_epochs_run: int) -> dict[str, Any]:
  """tanh epochs / ReLU epochs; a lower bound when tanh did not get there."""
  if relu is None:
    return {"ratio": None, "bound": "undefined", "text": "ReLU did not reach the threshold; no ratio."}
  if tanh is None:
    low = (tanh_epochs_run + 1) / relu
    return {"ratio": low, "bound": "lower",
            "text": f"tanh did not reach the threshold in {tanh_epochs_run} epochs: speed-up > {low:.1f}x "
                    f"(at least {tanh_epochs_run + 1} vs {relu} epochs)"}
  return {"ratio": tanh / relu, "bound": "exact", "text": f"speed-up {tanh / relu:.1f}x ({tanh} vs {relu} epochs)"}


def recorded_machine(workdirs: Sequence[str]) -> dict[str, str]:
  """{'machine', 'date'} from the runs' own machine.json records, never from the machine reading them."""
  members = [aggregate.MemberResult(os.path.basename(w), "", None, [], [],
                                    machine=aggregate._read_json(os.path.join(w, "machine.json"))) for w in workdirs]
  records = [m.machine for m in members if isinstance(m.machine, Mapping)]
  if not records:
    return {"machine": "not recorded with these runs (no machine.json)", "date": "not recorded"}
  text = aggregate.recorded_provenance(members)  # "Machine: …. Date: …."
  machine, date = text[len("Machine: "):].rsplit(". Date: ", 1)
  return {"machine": machine, "date": date.rstrip(".")}


def plot(errors: Mapping[str, Sequence[float]], threshold: float, title: str, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4.5))
  styles = {"relu": dict(ls="-", color="black", label="ReLU"), "tanh": dict(ls="--", color="black", label="tanh")}
  for name, errs in errors.items():
    style = styles.get(name, dict(label=name))
    ax.plot(range(1, len(errs) + 1), errs, marker="o", ms=3, lw=1.4, **style)
  ax.axhline(threshold, ls=(0, (4, 3)), color="tab:red", lw=1, label=f"{100 * threshold:.0f}% training error")
  ax.set(xlabel="Epochs", ylabel="Training error rate", title=title, ylim=(0, 0.8))
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def markdown(result: Mapping[str, Any], command: str | None = None) -> str:
  """figure1.md: provenance, the epochs to the threshold, and the per-epoch training errors."""
  errs = result["epoch_errors"]
  reach = result["epochs_to_threshold"]
  thr = 100 * result["threshold"]
  lines = ["# Figure 1: ReLU vs tanh, four-layer CNN on CIFAR-10", "",
           f"Machine: {result['machine']}. Date: {result['date']}.",
           *([f"Command: `{command}`"] if command else []), "",
           f"Training error is averaged over each epoch. **{result['speedup']['text']}.**", "",
           f"| net | epochs run | epochs to {thr:.0f}% training error | final epoch training error |",
           "|---|---|---|---|"]
  for name in ("relu", "tanh"):
    final = f"{100 * errs[name][-1]:.1f}%" if errs[name] else ""
    got = reach[name] if reach[name] is not None else f"not reached in {len(errs[name])}"
    lines.append(f"| {name} | {len(errs[name])} | {got} | {final} |")
  n = max(len(v) for v in errs.values())
  lines += ["", "| epoch | ReLU training error % | tanh training error % |", "|---|---|---|"]
  for e in range(n):
    cells = [f"{100 * errs[k][e]:.1f}" if e < len(errs[k]) else "" for k in ("relu", "tanh")]
    lines.append(f"| {e + 1} | {cells[0]} | {cells[1]} |")
  return "\n".join(lines) + "\n"


def figure1(folder: str, out_dir: str | None = None, threshold: float = 0.25,
            command: str | None = None) -> dict[str, Any]:
  """Computes the Figure 1 numbers for `folder` (with relu/ and tanh/) and writes the plot and JSON."""
  if not 0 < threshold < 1:
    raise ValueError(f"--threshold is a training error rate between 0 and 1, got {threshold}.")
  errors = {}
  for name in ("relu", "tanh"):
    path = os.path.join(folder, name, "metrics.jsonl")
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path} is missing; run `python -m experiments.sweep experiments/sweeps/figure1.py` "
                              f"with --workdir_root={os.path.dirname(os.path.normpath(folder)) or '.'} first.")
    errors[name] = epoch_errors(jsonl.read(path))
  reach = {k: epochs_to(v, threshold) for k, v in errors.items()}
  result = {"threshold": threshold, "epoch_errors": errors, "epochs_to_threshold": reach,
            "epochs_run": {k: len(v) for k, v in errors.items()},
            "speedup": speedup(reach["relu"], reach["tanh"], len(errors["tanh"])),
            **recorded_machine([os.path.join(folder, name) for name in ("relu", "tanh")])}
  out_dir = out_dir or folder
  os.makedirs(out_dir, exist_ok=True)
  plot(errors, threshold, f"CIFAR-10, four-layer CNN: {result['speedup']['text']}", os.path.join(out_dir, "figure1.png"))
  with open(os.path.join(out_dir, "figure1.json"), "w") as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(out_dir, "figure1.md"), "w") as f:
    f.write(markdown(result, command))
  return result


GRID_NAME = re.compile(r"^(?P<setup>[^-]+)-(?P<act>relu|tanh)-lr=(?P<lr>[0-9.e-]+)$")


def _grid_members(folder: str) -> dict[str, dict[str, dict[float, str]]]:
  """setup → act → rate → run folder, for members named `<setup>-<act>-lr=<rate>`."""
  out: dict[str, dict[str, dict[float, str]]] = {}
  for name in sorted(os.listdir(folder)):
    m = GRID_NAME.match(name)
    if m and os.path.exists(os.path.join(folder, name, "metrics.jsonl")):
      out.setdefault(m["setup"], {}).setdefault(m["act"], {})[float(m["lr"])] = os.path.join(folder, name)
  return out


def choose(errors_by_lr: Mapping[float, Sequence[float]], threshold: float) -> float:
  """The rate whose run reaches the threshold first; ties (and runs that never reach it) by final error."""
  def key(lr: float):
    errs = errors_by_lr[lr]
    reach = epochs_to(errs, threshold)
    return (reach if reach is not None else math.inf, errs[-1] if errs else math.inf)
  return min(errors_by_lr, key=key)


def figure1_grid(folder: str, out_dir: str | None = None, threshold: float = 0.25,
                 command: str | None = None) -> dict[str, Any]:
  """Figure 1 from a learning-rate sweep: each net's rate chosen separately, per setup."""
  grid = _grid_members(folder)
  if not grid:
    raise FileNotFoundError(f"{folder} holds neither relu/ and tanh/ runs nor `<setup>-<act>-lr=<rate>` members.")
  result: dict[str, Any] = {"threshold": threshold, **recorded_machine(
      [p for acts in grid.values() for runs in acts.values() for p in runs.values()]), "setups": {}}
  for setup, acts in grid.items():
    entry: dict[str, Any] = {"rates": {}}
    for act in ("relu", "tanh"):
      errs = {lr: epoch_errors(jsonl.read(os.path.join(path, "metrics.jsonl"))) for lr, path in acts.get(act, {}).items()}
      errs = {lr: e for lr, e in errs.items() if e}
      if not errs:
        continue
      entry["rates"][act] = {f"{lr:g}": {"epoch_errors": e} for lr, e in sorted(errs.items())}
    result["setups"][setup] = entry
  finish_grid(result)
  out_dir = out_dir or folder
  os.makedirs(out_dir, exist_ok=True)
  plot_grid(result, os.path.join(out_dir, "figure1.png"))
  with open(os.path.join(out_dir, "figure1.json"), "w") as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(out_dir, "figure1.md"), "w") as f:
    f.write(grid_markdown(result, command))
  return result


def finish_grid(result: dict[str, Any]) -> dict[str, Any]:
  """Fills each setup's chosen rates and speed-up from its per-rate epoch errors (the raw values)."""
  for entry in result["setups"].values():
    rates = entry["rates"]
    entry["chosen"] = {}
    for act in ("relu", "tanh"):
      for r in rates.get(act, {}).values():
        r["epochs_to_threshold"] = epochs_to(r["epoch_errors"], result["threshold"])
      errs = {float(lr): r["epoch_errors"] for lr, r in rates.get(act, {}).items()}
      if errs:
        entry["chosen"][act] = next(lr for lr in rates[act] if float(lr) == choose(errs, result["threshold"]))
    entry.pop("speedup", None)
    if set(entry["chosen"]) == {"relu", "tanh"}:
      relu = rates["relu"][entry["chosen"]["relu"]]
      tanh = rates["tanh"][entry["chosen"]["tanh"]]
      entry["speedup"] = grid_bound(speedup(relu["epochs_to_threshold"], tanh["epochs_to_threshold"],
                                            len(tanh["epoch_errors"])),
                                    {act: _edge(rates[act]) for act in ("relu", "tanh")})
  return result


def _edge(by_rate: Mapping[str, Mapping[str, Any]]) -> str:
  """'' when the grid brackets the fastest rate (its lowest and highest rates are both slower than the
  best), else the edge that is as fast as the best: 'lowest', 'highest' (or both; 'all' when none reached)."""
  reach = {float(lr): r["epochs_to_threshold"] for lr, r in by_rate.items()}
  best = min((n for n in reach.values() if n is not None), default=None)
  if best is None:
    return "all"
  edges = [name for name, lr in (("lowest", min(reach)), ("highest", max(reach))) if reach[lr] == best]
  return " and ".join(edges)


def grid_bound(result: dict[str, Any], edges: Mapping[str, str]) -> dict[str, Any]:
  """The speed-up qualified by the rate grid: where a net's fastest rate lies at the edge of its grid,
  a rate beyond the grid may be faster still. Unbracketed tanh makes the ratio an upper bound, unbracketed
  ReLU a lower bound; both (or a lower bound already, with tanh unbracketed) leave it undetermined."""
  if result["ratio"] is None or not any(edges.values()):
    return result
  note = "; ".join(f"{'ReLU' if act == 'relu' else 'tanh'}'s fastest rate is the {edges[act]} of its grid"
                   for act in ("relu", "tanh") if edges[act])
  lower = result["bound"] == "lower" or bool(edges["relu"])
  upper = bool(edges["tanh"])
  bound = "undetermined" if lower and upper else "lower" if lower else "upper"
  word = {"undetermined": "neither bound", "lower": "a lower bound", "upper": "an upper bound"}[bound]
  return {**result, "bound": bound, "text": f"{result['text']}, {word} ({note})"}


SETUP_TITLES = {"ours": "unit-scale inputs, LeCun init", "2012": "2012: 0..255 inputs, N(0, 0.01) init"}


def plot_grid(result: Mapping[str, Any], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  setups = list(result["setups"])
  fig, axes = plt.subplots(1, len(setups), figsize=(6 * len(setups), 4.5), squeeze=False)
  for ax, setup in zip(axes[0], setups):
    entry = result["setups"][setup]
    for act, ls in (("relu", "-"), ("tanh", "--")):
      for lr, r in entry["rates"].get(act, {}).items():
        chosen = entry["chosen"].get(act) == lr
        errs = r["epoch_errors"]
        ax.plot(range(1, len(errs) + 1), errs, ls=ls, color="black" if chosen else "0.7", lw=1.6 if chosen else 0.8,
                label=f"{'ReLU' if act == 'relu' else 'tanh'}, rate {lr}" + (" (chosen)" if chosen else ""),
                zorder=3 if chosen else 1)
    ax.axhline(result["threshold"], ls=(0, (4, 3)), color="tab:red", lw=1)
    text = entry.get("speedup", {}).get("text", "")
    ax.set(xlabel="Epochs", ylabel="Training error rate", ylim=(0, 0.8),
           title="\n".join([SETUP_TITLES.get(setup, setup), *textwrap.wrap(text, 60)]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def grid_markdown(result: Mapping[str, Any], command: str | None = None) -> str:
  thr = 100 * result["threshold"]
  lines = ["# Figure 1: ReLU vs tanh, four-layer CNN on CIFAR-10, each net's rate chosen separately", "",
           f"Machine: {result['machine']}. Date: {result['date']}.", *([f"Command: `{command}`"] if command else []),
           "", f"Training error is averaged over each epoch; a rate is chosen per net as the one reaching {thr:.0f}% "
           "training error in the fewest epochs (no evaluation image is used).", ""]
  for setup, entry in result["setups"].items():
    lines += [f"## {SETUP_TITLES.get(setup, setup)}", "",
              f"**{entry.get('speedup', {}).get('text', 'no ratio')}** (ReLU rate {entry['chosen'].get('relu')}, "
              f"tanh rate {entry['chosen'].get('tanh')}).", "",
              f"| net | rate | epochs to {thr:.0f}% | final training error | chosen |", "|---|---|---|---|---|"]
    for act in ("relu", "tanh"):
      for lr, r in entry["rates"].get(act, {}).items():
        reach = r["epochs_to_threshold"]
        errs = r["epoch_errors"]
        lines.append(f"| {act} | {lr} | {reach if reach is not None else f'not in {len(errs)}'} | "
                     f"{100 * errs[-1]:.1f}% | {'yes' if entry['chosen'].get(act) == lr else ''} |")
    lines.append("")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.figure1", description=__doc__.split("\n")[0])
  p.add_argument("folder", help="the folder holding relu/ and tanh/ runs")
  p.add_argument("--out", default="", help="where to write figure1.png/json (default: the folder)")
  p.add_argument("--threshold", type=float, default=0.25, help="training error to reach (the paper: 0.25)")
  p.add_argument("--command", default="", help="the command that produced the runs, recorded in figure1.md")
  flags = p.parse_args(argv)
  try:
    if not os.path.isdir(os.path.join(flags.folder, "relu")) and os.path.isdir(flags.folder):
      result = figure1_grid(flags.folder, flags.out or None, flags.threshold, flags.command or None)
      for setup, entry in result["setups"].items():
        print(f"{setup}: rates {entry['chosen']}; {entry.get('speedup', {}).get('text', 'no ratio')}")
      return 0
    result = figure1(flags.folder, flags.out or None, flags.threshold, flags.command or None)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"epochs to {100 * flags.threshold:.0f}% training error: {result['epochs_to_threshold']}; "
        f"{result['speedup']['text']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
