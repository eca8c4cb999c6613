"""Evaluation outputs: the console/markdown tables, report.md beside the papers' numbers, per-class
and confusion tables, and pictures (confusion matrix, per-class accuracy).

Outputs under <workdir>/eval/: step_<N>.json (all results), per_class_<protocol>_<set>.csv
(accuracy per class), confusions_<protocol>_<set>.{md,json} (the most-confused pairs),
confusion_<protocol>_<set>.png and per_class_<protocol>_<set>.png (data sets of up to
MAX_PICTURE_CLASSES classes), report.md (the table beside the papers' numbers).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Sequence

import numpy as np

from alexnet_jax.data import imagenet_classes
from alexnet_jax.eval import scoring

MAX_PICTURE_CLASSES = 100  # larger confusion matrices are unreadable as pictures

# Reported single-model ILSVRC-2012 errors (%), protocol and set as in the paper.
HUMAN_TOP5_ERROR = 5.1  # Russakovsky et al. 2015 (IJCV), Sec. 6.4: the trained annotator A1.
PAPER_RESULTS: dict[str, list[dict[str, Any]]] = {
    "alexnet": [
        dict(model="AlexNet, 1 CNN", protocol="10crop", set="validation", top1_err=40.7, top5_err=18.2,
             source="Krizhevsky et al. 2012, Table 2"),
    ],
    "zfnet": [
        dict(model="ZFNet, 1 convnet", protocol="10crop", set="validation", top1_err=38.4, top5_err=16.5,
             source="Zeiler & Fergus 2014, Table 2"),
    ],
    "vgg": [
        dict(model="VGG-16 (D), train [256;512]", protocol="multiscale (dense)", set="validation",
             top1_err=24.8, top5_err=7.5, source="Simonyan & Zisserman 2015, Table 4"),
        dict(model="VGG-19 (E), train [256;512]", protocol="multiscale (dense)", set="validation",
             top1_err=24.8, top5_err=7.5, source="Simonyan & Zisserman 2015, Table 4"),
    ],
    "googlenet": [
        dict(model="GoogLeNet, 1 model", protocol="center", set="validation", top1_err=None,
             top5_err=10.07, source="Szegedy et al. 2015, Table 5 (1 crop)"),
        dict(model="GoogLeNet, 1 model", protocol="10crop", set="validation", top1_err=None,
             top5_err=9.15, source="Szegedy et al. 2015, Table 5 (10 crops)"),
        dict(model="GoogLeNet, 1 model", protocol="144crop", set="validation", top1_err=None,
             top5_err=7.89, source="Szegedy et al. 2015, Table 5 (144 crops)"),
    ],
    "resnet": [
        dict(model="ResNet-50", protocol="10crop", set="validation", top1_err=22.85, top5_err=6.71,
             source="He et al. 2016, Table 3"),
        dict(model="ResNet-152", protocol="10crop", set="validation", top1_err=21.43, top5_err=5.71,
             source="He et al. 2016, Table 3"),
    ],
    "squeezenet": [
        dict(model="SqueezeNet 1.0", protocol="as reported", set="validation", top1_err=42.5,
             top5_err=19.7, source="Iandola et al. 2016, Table 2 (57.5% / 80.3% accuracy)"),
    ],
}


def display_names(class_names: Sequence[str]) -> tuple[str, ...]:
  """Class names for humans: a WordNet-id folder name (n01440764) becomes 'tench (n01440764)'."""
  classes = imagenet_classes.load()
  out = []
  for name in class_names:
    try:
      out.append(f"{classes.names[classes.index_of(name)]} ({name})")
    except KeyError:
      out.append(name)
  return tuple(out)


def write_tables(out_dir: str, protocol: str, set_name: str, tally: scoring.Tally, class_names: Sequence[str],
                 top: int) -> None:
  """per_class_<protocol>_<set>.csv and confusions_<protocol>_<set>.{md,json}."""
  os.makedirs(out_dir, exist_ok=True)
  stem = f"{protocol}_{set_name}"
  with open(os.path.join(out_dir, f"per_class_{stem}.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["index", "class", "examples", "top1"])
    w.writeheader()
    w.writerows(scoring.per_class_rows(tally, class_names))
  pairs = scoring.confused_pairs(tally.confusion, class_names, top)
  with open(os.path.join(out_dir, f"confusions_{stem}.json"), "w") as f:
    json.dump(pairs, f, indent=2)
  lines = [f"# Most-confused classes: {protocol}, {set_name}", "",
           "| true class | predicted as | count | share of true class |", "|---|---|---:|---:|"]
  lines += [f"| {p['true']} | {p['predicted']} | {p['count']} | {100 * p['fraction_of_true']:.1f}% |"
            for p in pairs]
  with open(os.path.join(out_dir, f"confusions_{stem}.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def write_pictures(out_dir: str, protocol: str, set_name: str, tally: scoring.Tally,
                   class_names: Sequence[str]) -> list[str]:
  """confusion_<stem>.png (row-normalised) and per_class_<stem>.png; none above MAX_PICTURE_CLASSES."""
  if tally.num_classes > MAX_PICTURE_CLASSES:
    return []
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  stem = f"{protocol}_{set_name}"
  names = [class_names[i] if i < len(class_names) else str(i) for i in range(tally.num_classes)]
  c = tally.num_classes
  side = min(16.0, 3.0 + 0.18 * c)
  paths = []

  totals = tally.confusion.sum(axis=1, keepdims=True)
  share = np.divide(tally.confusion, totals, out=np.zeros(tally.confusion.shape, np.float64), where=totals > 0)
  fig, ax = plt.subplots(figsize=(side, side))
  im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
  ax.set_xlabel("predicted class")
  ax.set_ylabel("true class")
  ax.set_title(f"Confusion matrix (share of each true class): {protocol}, {set_name}")
  if c <= 30:
    ax.set_xticks(range(c), names, rotation=90, fontsize=7)
    ax.set_yticks(range(c), names, fontsize=7)
  fig.colorbar(im, ax=ax, fraction=0.046)
  fig.tight_layout()
  paths.append(os.path.join(out_dir, f"confusion_{stem}.png"))
  fig.savefig(paths[-1], dpi=100)
  plt.close(fig)

  acc = np.divide(tally.class_top1, tally.class_total, out=np.zeros(c, np.float64), where=tally.class_total > 0)
  fig, ax = plt.subplots(figsize=(max(6.0, 0.2 * c + 2.0), 4.0))
  ax.bar(range(c), 100 * acc, color="tab:blue")
  ax.axhline(100 * tally.class_top1.sum() / max(tally.class_total.sum(), 1), color="tab:red", linestyle="--",
             label="mean over images")
  ax.set_ylim(0, 100)
  ax.set_ylabel("top-1 accuracy (%)")
  ax.set_title(f"Per-class top-1 accuracy: {protocol}, {set_name}")
  if c <= 30:
    ax.set_xticks(range(c), names, rotation=90, fontsize=7)
  else:
    ax.set_xlabel("class index")
  ax.legend(loc="lower right")
  fig.tight_layout()
  paths.append(os.path.join(out_dir, f"per_class_{stem}.png"))
  fig.savefig(paths[-1], dpi=100)
  plt.close(fig)
  return paths


def _pct(x: float | None) -> str:
  return "—" if x is None else f"{x:.2f}"


def format_table(results: dict[str, dict[str, Any]]) -> str:
  """A console/markdown table: protocol, set, top-1/top-5 accuracy and error, examples."""
  lines = ["| protocol | set | views | top-1 acc | top-5 acc | top-1 err | top-5 err | examples |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
  for protocol, by_set in results.items():
    for set_name, r in by_set.items():
      lines.append(f"| {protocol} | {set_name} | {r['views']} | {100 * r['top1']:.2f} | {100 * r['top5']:.2f} "
                   f"| {100 * (1 - r['top1']):.2f} | {100 * (1 - r['top5']):.2f} | {int(r['num_examples'])} |")
  return "\n".join(lines)


def format_report(results: dict[str, dict[str, Any]], *, model: str, dataset: str, step: int,
                  config_name: str) -> str:
  """report.md: this run's numbers, the paper's numbers for the family, the human baseline."""
  lines = [f"# Evaluation report: {config_name}", "",
           f"Model `{model}`, dataset `{dataset}`, checkpoint step {step}. Errors and accuracies in %.", "",
           "## This run", "", format_table(results), ""]
  papers = PAPER_RESULTS.get(model, [])
  lines += ["## Reported in the papers (ILSVRC-2012, 1000 classes)", ""]
  if papers:
    lines += ["| model | protocol | set | top-1 err | top-5 err | source |", "|---|---|---|---:|---:|---|"]
    lines += [f"| {p['model']} | {p['protocol']} | {p['set']} | {_pct(p['top1_err'])} | {_pct(p['top5_err'])} "
              f"| {p['source']} |" for p in papers]
  else:
    lines.append(f"No paper numbers recorded for `{model}`.")
  lines += ["", f"Human top-5 error on ILSVRC-2012: {HUMAN_TOP5_ERROR}% (Russakovsky et al. 2015, one trained "
            "annotator on 1500 test images).", "",
            "Read the gap between protocols (center → 10crop → multiscale/144crop) as what test-time "
            "averaging buys, and the gap between sets (validation → real → v2) as what the labels and a "
            "fresh test set change; only rows with the same dataset, protocol and set compare with a paper. "
            "`multiscale` here averages crops, not VGG's dense evaluation."]
  if any(r.get("minival_in_train") for by_set in results.values() for r in by_set.values()):
    lines += ["", "Note: minival is the tail of the train split and this run trained on it (train_split had no "
              "slice); train with --config.train_split='train[:-N]' for a held-out minival."]
  if dataset not in ("imagenet2012",):
    lines += ["", f"Note: this run's dataset is `{dataset}`, not ILSVRC-2012, so its numbers do not compare "
              "directly with the papers'."]
  return "\n".join(lines) + "\n"


def write_outputs(workdir: str, step: int, results: dict, tallies: dict, class_names: Sequence[str],
                  config) -> str:
  """Writes eval/step_<N>.json, per-class CSVs, confusion tables and pictures, and report.md; returns the folder."""
  out_dir = os.path.join(workdir, "eval")
  os.makedirs(out_dir, exist_ok=True)
  names = display_names(class_names)
  for (protocol, set_name), tally in tallies.items():
    if tally.class_total.sum():  # single-label sets only
      write_tables(out_dir, protocol, set_name, tally, names, int(config.eval.top_confusions))
      write_pictures(out_dir, protocol, set_name, tally, names)
  payload = {"step": step, "config_name": config.name, "model": config.model.name, "dataset": str(config.dataset),
             "results": results}
  path = os.path.join(out_dir, f"step_{step}.json")
  with open(path + ".tmp", "w") as f:
    json.dump(payload, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(format_report(results, model=config.model.name, dataset=str(config.dataset), step=step,
                          config_name=config.name))
  return out_dir
