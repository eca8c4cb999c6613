"""Records of a trial run of the small-data AlexNet recipe, and how far its conv1 left its initialisation.

  python -m experiments.alexnet_paper_trial --workdir=<run folder> \
      --out=experiments/results/alexnet_paper/cpu_trial/runs/<run> --command="<the training command>"

Copies the run's small records (config.json, metrics.jsonl, summary.json, eval*.json; never a
checkpoint) into `--out`, writes machine.json (host, CPU, date, versions, the command) and
conv1.json: for the initialisation (step 0) and every kept checkpoint, ‖W − W0‖/‖W0‖ per tower and
the colour scores of conv1's kernels against those of random Gaussian kernels
(alexnet_jax/inspect/kernels.py). W0 is drawn again from the run's config and seed by the trainer's
own initialisation (`Runtime.init_state`), so it is exactly the run's starting point.

`render_trial(folder)` turns the committed records of a trial (one subfolder per run) into the
markdown table of the study's README.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any, Sequence

import numpy as np

from alexnet_jax.errors import UserError
from alexnet_jax.inspect import kernels

RECORD_FILES = ("config.json", "metrics.jsonl", "summary.json")
LN10 = float(np.log(10.0))


class TrialError(UserError):
  """The run folder or output asked for cannot be used."""


def initial_conv1(workdir: str) -> np.ndarray:
  """conv1's kernel at step 0 of the run in `workdir`, from its config.json and seed."""
  import ml_collections
  from alexnet_jax import runtime
  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  params = runtime.Runtime(config).init_state().params
  return np.asarray(params["conv1"]["kernel"], np.float32)


def conv1_entry(step: int, kernel: np.ndarray, init: np.ndarray, towers: int) -> dict[str, Any]:
  entry = {"step": step, "relative_change": kernels.relative_change(kernel, init, towers),
           "colour": kernels.versus_random(kernel)}
  if towers > 1:
    entry["colour_per_tower"] = [kernels.versus_random(k) for k in np.split(kernel, towers, axis=3)]
  return entry


def conv1_measures(workdir: str) -> dict[str, Any]:
  """conv1 at its initialisation and at every kept checkpoint of the run."""
  sets = kernels.from_workdir(workdir, steps="all", layer="conv1")
  init = initial_conv1(workdir)
  towers = sets[0].towers
  entries = [conv1_entry(0, init, init, towers)]
  entries += [conv1_entry(int(ks.label.removeprefix("step_")), ks.kernel, init, towers) for ks in sets]
  return {"layer": "conv1", "shape": list(init.shape), "towers": towers,
          "relative_change": "||W - W0|| / ||W0|| per tower, W0 the run's initial kernel",
          "colour": kernels.versus_random.__doc__.split("\n")[0].strip(), "steps": entries}


def write_records(workdir: str, out: str, command: str) -> list[str]:
  from experiments.campaign import machine_record
  if not os.path.isfile(os.path.join(workdir, "config.json")):
    raise TrialError(f"--workdir={workdir!r} holds no config.json; point it at a training run's folder.")
  os.makedirs(out, exist_ok=True)
  names = [n for n in RECORD_FILES if os.path.isfile(os.path.join(workdir, n))]
  names += sorted(n for n in os.listdir(workdir) if n.startswith("eval") and n.endswith(".json"))
  for name in names:
    shutil.copyfile(os.path.join(workdir, name), os.path.join(out, name))
  written = [os.path.join(out, n) for n in names]
  for name, record in (("machine.json", machine_record(command)), ("conv1.json", conv1_measures(workdir))):
    with open(os.path.join(out, name), "w") as f:
      json.dump(record, f, indent=1)
    written.append(os.path.join(out, name))
  return written


# ----------------------------------------------------------------------------- the table


def _rows(path: str) -> list[dict[str, Any]]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def run_summary(run_dir: str) -> dict[str, Any]:
  """What the README's table shows for one committed trial run."""
  rows = _rows(os.path.join(run_dir, "metrics.jsonl"))
  train = [r for r in rows if "train/loss" in r]
  evals = [r for r in rows if "eval/top1" in r]
  with open(os.path.join(run_dir, "conv1.json")) as f:
    conv1 = json.load(f)
  with open(os.path.join(run_dir, "config.json")) as f:
    config = json.load(f)
  last = conv1["steps"][-1]
  return {"run": os.path.basename(run_dir.rstrip("/")), "lrn": config["model"]["lrn"],
          "warmup_steps": config["schedule"]["warmup_steps"], "steps": train[-1]["step"] if train else 0,
          "first_loss": train[0]["train/loss"] if train else None,
          "max_loss": max(r["train/loss"] for r in train) if train else None,
          "last_loss": train[-1]["train/loss"] if train else None,
          "last_train_top1": train[-1]["train/top1"] if train else None,
          "eval_step": evals[-1]["step"] if evals else None, "eval_top1": evals[-1]["eval/top1"] if evals else None,
          "conv1_step": last["step"], "relative_change": last["relative_change"],
          "colour_median": last["colour"]["median"], "random_median": last["colour"]["random_median"],
          "init_colour_median": conv1["steps"][0]["colour"]["median"],
          "auc_random_above": last["colour"]["auc_random_above"], "p_value": last["colour"]["p_value"]}


def _f(value: Any, fmt: str) -> str:
  return "" if value is None else format(value, fmt)


def _p(value: float) -> str:
  return "p < 1e-10" if value < 1e-10 else f"p = {value:.2g}"


def render_trial(folder: str) -> str:
  """The markdown table of a trial folder (<folder>/runs/<run>/ with the records above)."""
  runs_dir = os.path.join(folder, "runs")
  runs = [run_summary(os.path.join(runs_dir, n)) for n in sorted(os.listdir(runs_dir))
          if os.path.isfile(os.path.join(runs_dir, n, "conv1.json"))]
  head = ("| run | LRN | warm-up steps | steps | train loss: first / max / last logged | train top-1 (last log) "
          "| val top-1 (step) | conv1 ‖W−W0‖/‖W0‖ per tower (step) | conv1 colour median: init → trained "
          "(random kernels) | AUC random > trained (p) |\n|---|---|---|---|---|---|---|---|---|---|\n")
  lines = [f"| {r['run']} | {'on' if r['lrn'] else 'off'} | {r['warmup_steps']} | {r['steps']} | "
           f"{_f(r['first_loss'], '.3f')} / {_f(r['max_loss'], '.3f')} / {_f(r['last_loss'], '.3f')} | "
           f"{_f(r['last_train_top1'] and 100 * r['last_train_top1'], '.1f')}% | "
           f"{_f(r['eval_top1'] and 100 * r['eval_top1'], '.2f')}% ({r['eval_step']}) | "
           f"{' / '.join(format(v, '.3f') for v in r['relative_change'])} ({r['conv1_step']}) | "
           f"{r['init_colour_median']:.3f} → {r['colour_median']:.3f} ({r['random_median']:.3f}) | "
           f"{r['auc_random_above']:.3f} ({_p(r['p_value'])}) |" for r in runs]
  return head + "\n".join(lines) + f"\n\nln 10 = {LN10:.3f}: the loss of a uniform guess over 10 classes.\n"


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="the training run's folder")
  p.add_argument("--out", required=True, help="where the run's records go")
  p.add_argument("--command", default="", help="the training command, for machine.json")
  args = p.parse_args(argv)
  try:
    for path in write_records(args.workdir, args.out, args.command):
      print(path)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
