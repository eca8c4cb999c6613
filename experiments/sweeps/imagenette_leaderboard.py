"""The Imagenette leaderboard recipe (configs/imagenette.py): 5 epochs and 20 epochs, five seeds each.

  python -m experiments.gpu_session --plan=leaderboard            # on one GPU (docs/GPU.md)
  python -m experiments.sweep experiments/sweeps/imagenette_leaderboard.py --seeds=0,1,2,3,4 \
      --args=data=<imagenette folder>,bf16 --parallel=6

128 px, the official imagenette2 split, random initialisation, no test-time augmentation. The
learning rate (0.1 at batch 64) was fixed before any run and is not tuned here: Imagenette has no
test split apart from the validation images the leaderboard reports, so a rate chosen on them
would flatter the result. experiments/gpu_session.py runs every 5-epoch seed before the 20-epoch ones.

`render_leaderboard(runs folder)` gives the table: per epoch budget, the runs finished, top-1 mean
± sd over seeds (sample sd), and the wall time per run from process start to its last result,
compilation included (time-to-accuracy), read from each run's summary.json and machine.json.
"""

from __future__ import annotations

import json
import os
import statistics

from experiments.sweep import member

BASE = "configs/imagenette.py"
BASELINE = "epochs=5"
MEMBERS = [
    member("epochs=5", {"epochs": 5}),
    member("epochs=20", {"epochs": 20}),
]
SEEDS = (0, 1, 2, 3, 4)

# fastai's Imagenette leaderboard at 128 px: the best entries' top-1 (%), each the mean of 5 runs.
LEADERBOARD = {5: 87.43, 20: 91.57}


def _load(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def leaderboard_rows(folder: str) -> list[dict]:
  """One row per epoch budget from the run folders under `folder` (<folder>/epochs=<E>-seed=<k>/)."""
  runs: dict[int, list[tuple[float, float | None, str]]] = {}
  for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
    summary = _load(os.path.join(folder, name, "summary.json"))
    if not name.startswith("epochs=") or not summary.get("done"):
      continue
    epochs = int(name.split("-", 1)[0].split("=", 1)[1])
    machine = _load(os.path.join(folder, name, "machine.json"))
    runs.setdefault(epochs, []).append((100.0 * summary["eval"]["top1"], machine.get("wall_s"),
                                        machine.get("device_kind") or machine.get("gpu") or "unknown"))
  rows = []
  for epochs, items in sorted(runs.items()):
    top1 = [t for t, _, _ in items]
    walls = [w for _, w, _ in items if w is not None]
    rows.append({"epochs": epochs, "runs": len(items), "top1_mean": statistics.fmean(top1),
                 "top1_sd": statistics.stdev(top1) if len(top1) > 1 else None,
                 "wall_s_mean": statistics.fmean(walls) if walls else None,
                 "wall_s_range": (min(walls), max(walls)) if walls else None,
                 "machines": sorted({m for _, _, m in items}), "leaderboard": LEADERBOARD.get(epochs)})
  return rows


def render_leaderboard(folder: str) -> str:
  """The markdown table of `leaderboard_rows`; a budget with fewer than 5 runs says so."""
  lines = ["| epochs | runs | top-1 % (mean ± sd) | leaderboard % | wall per run, compile included | machine |",
           "|---:|---:|---|---:|---|---|"]
  for r in leaderboard_rows(folder):
    sd = f" ± {r['top1_sd']:.2f}" if r["top1_sd"] is not None else " (one run)"
    short = "" if r["runs"] >= 5 else f" (only {r['runs']} of 5)"
    wall = (f"{r['wall_s_mean']:.0f} s ({r['wall_s_range'][0]:.0f}-{r['wall_s_range'][1]:.0f})"
            if r["wall_s_mean"] is not None else "not recorded")
    lines.append(f"| {r['epochs']} | {r['runs']}{short} | {r['top1_mean']:.2f}{sd} | {r['leaderboard'] or ''} | "
                 f"{wall} | {', '.join(r['machines'])} |")
  return "\n".join(lines) + "\n"
