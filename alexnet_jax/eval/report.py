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

from alexnet_jax import atomic
from alexnet_jax.data import imagenet_classes
from alexnet_jax.eval import scoring

MAX_PICTURE_CLASSES = 100  # larger confusion matrices are unreadable as pictures

# Reported single-model ILSVRC-2012 errors (%), protocol and set as in the paper.
HUMAN_TOP5_ERROR = 5.1  # Russakovsky et al. 2015 (IJCV), Sec. 6.4: the trained annotator A1.
def _paper(family: str, variant: str, model: str, protocol: str, top1: float | None, top5: float | None,
           source: str) -> dict[str, Any]:
  return dict(family=family, variant=variant, model=model, protocol=protocol, set="validation",
              top1_err=top1, top5_err=top5, source=source)


# The papers' numbers, in one place: report.md lists a family's rows beside a run's results, and
# `experiments.model_table` quotes each variant's first row. `protocol` is ours where it matches
# the paper's test (center, 10crop, 144crop), else the paper's words.
PAPERS: list[dict[str, Any]] = [
    _paper("alexnet", "alexnet (paper)", "AlexNet, 1 CNN", "10crop", 40.7, 18.2, "Krizhevsky et al. 2012, Table 2"),
    _paper("zfnet", "zfnet", "ZFNet, 1 convnet", "10crop", 38.4, 16.5, "Zeiler & Fergus 2014, Table 2"),
    *[_paper("vgg", f"vgg{d}", f"VGG-{d} ({c})", "1 scale, dense", t1, t5, "Simonyan & Zisserman 2015, Table 3")
      for d, c, t1, t5 in ((11, "A", 29.6, 10.4), (13, "B", 28.7, 9.9), (16, "D", 25.6, 8.1), (19, "E", 25.5, 8.0))],
    _paper("vgg", "vgg16", "VGG-16 (D), train [256;512]", "multiscale (dense)", 24.8, 7.5,
           "Simonyan & Zisserman 2015, Table 4"),
    _paper("vgg", "vgg19", "VGG-19 (E), train [256;512]", "multiscale (dense)", 24.8, 7.5,
           "Simonyan & Zisserman 2015, Table 4"),
    _paper("googlenet", "googlenet", "GoogLeNet, 1 model", "center", None, 10.07, "Szegedy et al. 2015, Table 5 (1 crop)"),
    _paper("googlenet", "googlenet", "GoogLeNet, 1 model", "10crop", None, 9.15, "Szegedy et al. 2015, Table 5 (10 crops)"),
    _paper("googlenet", "googlenet", "GoogLeNet, 1 model", "144crop", None, 7.89,
           "Szegedy et al. 2015, Table 5 (144 crops)"),
    _paper("resnet", "resnet18", "ResNet-18", "10crop", 27.88, None, "He et al. 2016, Table 2"),
    *[_paper("resnet", f"resnet{d}", f"ResNet-{d}", "10crop", t1, t5, "He et al. 2016, Table 3")
      for d, t1, t5 in ((34, 24.52, 7.46), (50, 22.85, 6.71), (101, 21.75, 6.05), (152, 21.43, 5.71))],
    _paper("resnet", "resnet50_d", "ResNet-50-D", "center", 22.84, 6.48, "He et al. 2019, Table 5"),
    _paper("resnet", "resnext50_32x4d", "ResNeXt-50 32×4d", "center", 22.2, None, "Xie et al. 2017"),
    _paper("resnet", "se_resnet50", "SE-ResNet-50", "center", 23.29, 6.62, "Hu et al. 2018"),
    _paper("squeezenet", "squeezenet1_0", "SqueezeNet 1.0", "as reported", 42.5, 19.7,
           "Iandola et al. 2016, Table 2 (57.5% / 80.3% accuracy)"),
]
_PROTOCOL_WORDS = {"10crop": "10-crop", "center": "1 crop", "144crop": "144 crops"}


def paper_results(family: str) -> list[dict[str, Any]]:
  """The papers' rows for a model family (config.model.name)."""
  return [p for p in PAPERS if p["family"] == family]


def paper_error(variant: str) -> str:
  """'top-1 / top-5 (protocol)' of a variant's first paper row, '–' where a paper gives none."""
  rows = [p for p in PAPERS if p["variant"] == variant]
  if not rows:
    return "–"
  p = rows[0]
  errs = " / ".join("–" if e is None else f"{e:g}" for e in (p["top1_err"], p["top5_err"]))
  return f"{errs} ({_PROTOCOL_WORDS.get(p['protocol'], p['protocol'])})"


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
  papers = paper_results(model)
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
  atomic.write_json(path, payload, indent=2, sort_keys=True)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(format_report(results, model=config.model.name, dataset=str(config.dataset), step=step,
                          config_name=config.name))
  return out_dir
