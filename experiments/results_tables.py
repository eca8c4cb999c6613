"""The tables of experiments/results/<study>/, as pure functions of the study's records.

Each study folder holds a `study.json` that says what its record is and where it was made:

  record        the file the tables are computed from: `runs/` (the records layout: one folder per run
                with config.json, metrics.jsonl(.gz), summary.json, eval*.json, machine.json), or, for
                studies whose per-run logs are lost, `results.csv` (each run's final values, as the
                aggregation of the day wrote them) or a JSON of raw values (`figure1.json`, `summary.json`)
  machine       the machine that trained the runs (a machine.json record), named by every table
  command       how the runs and the table were made
  lost          what of the raw record is not in the repository
  title, baseline, seeds, planned_runs   the table's title, the baseline member, the seed table's
                options (min_epochs, num_classes) and how many runs the study planned

The seed and results tables are those of `experiments.aggregate` (its functions compute them, from
the run folders or from the members rebuilt from results.csv); Figure 1 is `experiments.figure1`'s
and the tower table `alexnet_jax.inspect.kernels`'s. Nothing here reads the clock or the host.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Mapping

from experiments import aggregate
from experiments import figure1
from experiments import seeds as seeds_lib

RESULTS = os.path.join("experiments", "results")


class RecordError(Exception):
  """A study's record is missing or unreadable; the command prints it as one line."""


def study_dir(root: str, study: str) -> str:
  return os.path.join(root, RESULTS, study)


def read_json(path: str) -> Any:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise RecordError(f"{path} is missing") from None
  except ValueError as e:
    raise RecordError(f"{path} is not valid JSON ({e})") from None


def study_info(root: str, study: str) -> dict[str, Any]:
  """The study's study.json; a study in the records layout may go without one (its runs say it all)."""
  path = os.path.join(study_dir(root, study), "study.json")
  if not os.path.exists(path) and has_runs(root, study):
    return {"title": f"Study `{study}`"}
  return read_json(path)


def seeded(root: str, study: str) -> bool:
  """Whether the study's runs are named <member>-seed=<k> (so it has a seed table)."""
  members, baseline = _members(root, study)
  return aggregate.seed_study(members, baseline, _seed_options(study_info(root, study)))[1] is not None


def has_runs(root: str, study: str) -> bool:
  return os.path.isdir(os.path.join(study_dir(root, study), "runs"))


def csv_rows(root: str, study: str) -> list[dict[str, str]]:
  path = os.path.join(study_dir(root, study), "results.csv")
  try:
    with open(path, newline="", encoding="utf-8") as f:
      return list(csv.DictReader(f))
  except FileNotFoundError:
    raise RecordError(f"{path} is missing") from None


def _float(text: str) -> float | None:
  return float(text) if text not in ("", None) else None


def members_from_csv(root: str, study: str) -> list[aggregate.MemberResult]:
  """The members of a study whose record is results.csv, as `aggregate` reads run folders."""
  info = study_info(root, study)
  classes = (info.get("seeds") or {}).get("num_classes")
  members = []
  for r in csv_rows(root, study):
    top1, top5 = _float(r["top1"]), _float(r["top5"])
    summary = {"eval": {"top1": None if top1 is None else top1 / 100, "top5": None if top5 is None else top5 / 100},
               "epoch": _float(r["epochs"]), "done": r["status"] == "done", "wall_s": _float(r["wall_s"]),
               "img_per_s": _float(r["img_per_s"])}
    if classes:
      summary["num_classes"] = classes
    paper = {"top1": _float(r["paper_d_top1"]), "top5": _float(r["paper_d_top5"]), "note": r["paper_note"]}
    has_paper = any(v not in (None, "") for v in paper.values())
    members.append(aggregate.MemberResult(r["member"], r["overrides"], summary, [], [],
                                          paper if has_paper else None, machine=info.get("machine")))
  if not members:
    raise RecordError(f"{os.path.join(study_dir(root, study), 'results.csv')} has no runs")
  return members


def _members(root: str, study: str) -> tuple[list[aggregate.MemberResult], str]:
  info = study_info(root, study)
  if has_runs(root, study):
    members, baseline = aggregate.load_members(study_dir(root, study))
    return members, info.get("baseline") or baseline
  return members_from_csv(root, study), info.get("baseline", "baseline")


def render_results_md(root: str, study: str) -> str:
  """results.md of a sweep study: every run's final values, from its records."""
  info = study_info(root, study)
  members, baseline = _members(root, study)
  text = aggregate.markdown(aggregate.table_rows(members, baseline), baseline, info.get("title", study),
                            info.get("command"), aggregate.recorded_provenance(members))
  if info.get("footer"):
    text += "\n" + info["footer"] + "\n"
  return text


def render_results_csv(root: str, study: str) -> str:
  """results.csv of a study in the records layout (for a results.csv record it is the record itself)."""
  return aggregate.csv_text(aggregate.table_rows(*_members(root, study)))


def _seed_options(info: Mapping[str, Any]) -> aggregate.SeedOptions:
  s = info.get("seeds") or {}
  return aggregate.SeedOptions(min_epochs=s.get("min_epochs"), num_classes=s.get("num_classes"),
                               margin=s.get("margin"))


def seed_tables(root: str, study: str) -> tuple[str, str, Any]:
  """(seeds.md, seeds.csv, the SeedStudy) of a study run over seeds."""
  info = study_info(root, study)
  members, baseline = _members(root, study)
  options = _seed_options(info)
  groups, result = aggregate.seed_study(members, baseline, options)
  if result is None:
    raise RecordError(f"no member of {study} is named <member>-seed=<k>")
  rows = seeds_lib.seed_rows(groups, result)
  md = seeds_lib.seed_markdown(rows, result, info.get("title", study) + " over seeds", info.get("command"),
                               options.min_epochs, aggregate.recorded_provenance(members))
  return md, aggregate.csv_text(rows, seeds_lib.SEED_COLUMNS), rows


def render_seeds_md(root: str, study: str) -> str:
  return seed_tables(root, study)[0]


def render_seeds_csv(root: str, study: str) -> str:
  return seed_tables(root, study)[1]


def seed_row(root: str, study: str, member: str) -> dict[str, str]:
  rows = seed_tables(root, study)[2]
  for r in rows:
    if r["member"] == member:
      return r
  raise RecordError(f"{study}: no member {member!r} in the seed table")


def run_row(root: str, study: str, run: str) -> aggregate.MemberResult:
  for m in _members(root, study)[0]:
    if m.name == run:
      return m
  raise RecordError(f"{study}: no run {run!r} in its record")


# ------------------------------------------------------------------------------------------ Figure 1


def figure1_result(root: str, study: str) -> dict[str, Any]:
  """figure1.json with every derived field recomputed from its per-epoch errors, and the machine of the
  study's record (the one that trained the nets)."""
  info = study_info(root, study)
  result = read_json(os.path.join(study_dir(root, study), info.get("record", "figure1.json")))
  machine = info.get("machine") or {}
  result["machine"] = machine.get("description", "not recorded")
  result["date"] = machine.get("date", "not recorded")
  if info.get("kind") == "figure1_grid":
    return figure1.finish_grid(result)
  errors = result["epoch_errors"]
  reach = {k: figure1.epochs_to(v, result["threshold"]) for k, v in errors.items()}
  result["epochs_to_threshold"] = reach
  result["epochs_run"] = {k: len(v) for k, v in errors.items()}
  result["speedup"] = figure1.speedup(reach["relu"], reach["tanh"], len(errors["tanh"]))
  return result


def render_figure1_json(root: str, study: str) -> str:
  return json.dumps(figure1_result(root, study), indent=2) + "\n"


def render_figure1_md(root: str, study: str) -> str:
  info = study_info(root, study)
  result = figure1_result(root, study)
  if info.get("kind") == "figure1_grid":
    return figure1.grid_markdown(result, info.get("command"))
  return figure1.markdown(result, info.get("command"))


def draw_figure1(root: str, study: str) -> str:
  """Redraws the study's figure1.png from figure1.json (matplotlib; not byte-stable, so not checked)."""
  info = study_info(root, study)
  result = figure1_result(root, study)
  path = os.path.join(study_dir(root, study), "figure1.png")
  if info.get("kind") == "figure1_grid":
    figure1.plot_grid(result, path)
  else:
    figure1.plot(result["epoch_errors"], result["threshold"],
                 f"CIFAR-10, four-layer CNN: {result['speedup']['text']}", path)
  return path


# ------------------------------------------------------------------------------------------ towers


def render_towers_md(root: str, study: str) -> str:
  """summary.md of the tower specialisation study from its summary.json, with the pictures beside it."""
  from alexnet_jax.inspect import kernels  # numpy only; imported here so the other tables do not need it

  folder = study_dir(root, study)
  summary = read_json(os.path.join(folder, "summary.json"))
  pictures = {e["label"]: f"{e['label']}_kernels.png" for e in summary["sets"]
              if os.path.exists(os.path.join(folder, f"{e['label']}_kernels.png"))}
  if os.path.exists(os.path.join(folder, "hist_all.png")):
    pictures["histograms"] = "hist_all.png"
  return kernels.format_summary(summary, pictures)


# ------------------------------------------------------------------------------------------ campaign


def campaign_counts(root: str, study: str) -> tuple[int, int, int, int]:
  """(planned, finished, stopped early, not started) of one study of the GPU campaign, from its record."""
  info = study_info(root, study)
  planned = int(info["planned_runs"])
  if info.get("kind") == "figure1_grid":
    result = figure1_result(root, study)
    runs = [r for e in result["setups"].values() for by_rate in e["rates"].values() for r in by_rate.values()]
    done = sum(len(r["epoch_errors"]) >= int(info["epochs"]) for r in runs)
    return planned, done, len(runs) - done, planned - len(runs)
  members = _members(root, study)[0]
  done = sum(m.done for m in members)
  return planned, done, len(members) - done, planned - len(members)
