"""The kernels command: a layer's kernels as pictures, and how colour-specific each tower's kernels are.

  alexnet-jax kernels --workdir=runs/alexnet                       # conv1 of the latest checkpoint
  alexnet-jax kernels --workdir=runs/alexnet --steps=all           # every kept checkpoint: filters forming
  alexnet-jax kernels --kernels=seed0.npz,seed1.npz,seed2.npz --out=experiments/results/tower_specialisation

Kernels come from a workdir's checkpoints (any model; only the chosen layer's array is read, no config
is needed) or from `.npz` files holding a kernel array in Flax's HWIO layout. The layer is by default
the model's first convolution (the one that reads the 3-channel image: conv1 of AlexNet and ZFNet);
`--layer` names another (`conv2`, `stem/conv`). The output channels are split into `--towers` equal,
consecutive groups (for a workdir: the run's `config.model.towers`; for an .npz: 2, the 2012 paper's
two GPUs); each group is drawn as one block, each kernel scaled to its own range as the paper draws them.

Colour specificity of one kernel w (h × w × 3, one output channel of a layer that reads RGB): let g be
w averaged over its three colour channels, repeated on each channel; the score is

    score(w) = ||w − g||² / ||w||²

the share of the kernel's energy outside its grey component. It is 0 for a kernel whose three colour
planes are equal (it responds to luminance only) and 1 for one whose planes sum to zero at every pixel
(pure colour opponency); an all-zero kernel scores 0. Because w − g is orthogonal to g,
||w||² = 3·||g||² + ||w − g||², so the score always lies in [0, 1].

Per kernel set the outputs are the kernel picture, the scores (CSV and JSON), a histogram per tower,
and, over all sets given, `summary.md`/`summary.json`: per tower the mean and median score, which tower
is the more colour-specific, and how well the scores separate the towers (AUC, the chance that a random
kernel of the more colour-specific tower scores above a random kernel of the other; 0.5 = no separation).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Sequence

import numpy as np

from alexnet_jax.errors import UserError

# The claim these numbers are set beside (Krizhevsky, Sutskever & Hinton 2012, Sec. 6.1, on Figure 3).
PAPER_CLAIM = ("\"The kernels on GPU 1 are largely color-agnostic, while the kernels on on GPU 2 are largely "
               "color-specific. This kind of specialization occurs during every run and is independent of any "
               "particular random weight initialization (modulo a renumbering of the GPUs).\" "
               "(Krizhevsky, Sutskever & Hinton 2012, Sec. 6.1)")
NPZ_TOWERS = 2  # towers of an .npz kernel array unless --towers says otherwise (the 2012 paper's two GPUs)


class KernelsError(UserError):
  """The kernels asked for cannot be found (no workdir or checkpoint, no such layer or step, bad file)."""


@dataclasses.dataclass
class KernelSet:
  """One layer's kernels (HWIO) from one checkpoint step or file."""
  label: str          # file-name safe: 'step_1000', 'seed0'
  source: str         # where it came from, for the reports
  layer: str          # e.g. 'conv1'
  kernel: np.ndarray  # [h, w, in, out]
  towers: int

  @property
  def rgb(self) -> bool:
    return self.kernel.shape[2] == 3

  def scores(self) -> np.ndarray:
    return colour_scores(self.kernel)

  def tower_of(self) -> np.ndarray:
    """The tower index of each output channel: consecutive equal blocks."""
    n = self.kernel.shape[3]
    return np.repeat(np.arange(self.towers), n // self.towers)


# ----------------------------------------------------------------------------- the score


def colour_scores(kernel: np.ndarray) -> np.ndarray:
  """||w − g||² / ||w||² per output channel of an HWIO kernel with 3 input channels (see the docstring)."""
  k = np.asarray(kernel, np.float64)
  if k.ndim != 4 or k.shape[2] != 3:
    raise KernelsError(f"A colour score needs kernels that read 3 colour channels (HWIO [h, w, 3, n]); "
                       f"got shape {tuple(k.shape)}.")
  grey = k.mean(axis=2, keepdims=True)
  total = (k ** 2).sum(axis=(0, 1, 2))
  colour = ((k - grey) ** 2).sum(axis=(0, 1, 2))
  return np.where(total > 0, colour / np.where(total > 0, total, 1.0), 0.0)


def separation_auc(a: np.ndarray, b: np.ndarray) -> float:
  """P(x > y) + ½·P(x = y) for x drawn from `a` and y from `b` (the Mann–Whitney AUC)."""
  a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None, :]
  return float(((a > b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size))


def relative_change(kernel: np.ndarray, init: np.ndarray, towers: int) -> list[float]:
  """||W − W0|| / ||W0|| per tower (consecutive equal blocks of output channels): how far a layer
  moved from its initialisation W0."""
  w, w0 = np.asarray(kernel, np.float64), np.asarray(init, np.float64)
  if w.shape != w0.shape:
    raise KernelsError(f"the kernel {w.shape} and its initialisation {w0.shape} differ in shape.")
  return [float(np.linalg.norm(d - d0) / np.linalg.norm(d0))
          for d, d0 in zip(np.split(w, towers, axis=3), np.split(w0, towers, axis=3))]


def versus_random(kernel: np.ndarray, draws: int = 20, seed: int = 0) -> dict[str, Any]:
  """The colour scores of `kernel` against those of i.i.d. Gaussian kernels of its shape (what
  N(0, σ²) initialisation gives, for any σ; their mean is 2/3): medians, and the Mann–Whitney AUC
  P(random > trained) with its two-sided p-value (scipy). 0.5 = indistinguishable from random."""
  from scipy import stats
  scores = colour_scores(kernel)
  rng = np.random.default_rng(seed)
  random = np.concatenate([colour_scores(rng.normal(size=kernel.shape)) for _ in range(draws)])
  test = stats.mannwhitneyu(random, scores, alternative="two-sided")
  return {"median": float(np.median(scores)), "q25": float(np.quantile(scores, 0.25)),
          "q75": float(np.quantile(scores, 0.75)), "random_median": float(np.median(random)),
          "random_q25": float(np.quantile(random, 0.25)), "random_q75": float(np.quantile(random, 0.75)),
          "auc_random_above": separation_auc(random, scores), "p_value": float(test.pvalue),
          "random_kernels": int(random.size)}


def summarise(sets: Sequence[KernelSet]) -> dict[str, Any]:
  """Per set and tower: count, mean, median, quartiles of the score; the more colour-specific tower; AUC."""
  out: list[dict[str, Any]] = []
  for ks in sets:
    if not ks.rgb:
      continue
    s, tower = ks.scores(), ks.tower_of()
    towers = [{"tower": t, "n": int((tower == t).sum()), "mean": float(s[tower == t].mean()),
               "median": float(np.median(s[tower == t])), "q25": float(np.quantile(s[tower == t], 0.25)),
               "q75": float(np.quantile(s[tower == t], 0.75))} for t in range(ks.towers)]
    entry: dict[str, Any] = {"label": ks.label, "source": ks.source, "layer": ks.layer,
                             "shape": list(ks.kernel.shape), "mean": float(s.mean()), "towers": towers}
    if ks.towers == 2:
      more = int(np.argmax([t["median"] for t in towers]))
      entry["more_colour_tower"] = more
      entry["median_gap"] = towers[more]["median"] - towers[1 - more]["median"]
      entry["auc"] = separation_auc(s[tower == more], s[tower == 1 - more])
    out.append(entry)
  two = [e for e in out if "more_colour_tower" in e]
  verdict = {}
  if two:
    counts = [sum(e["more_colour_tower"] == t for e in two) for t in (0, 1)]
    verdict = {"sets": len(two), "tower_counts": counts, "same_tower_every_time": 0 in counts,
               "min_auc": min(e["auc"] for e in two), "mean_auc": float(np.mean([e["auc"] for e in two]))}
  return {"definition": "score = ||w - g||^2 / ||w||^2, g = w averaged over its 3 colour channels",
          "sets": out, "verdict": verdict}


def format_summary(summary: dict[str, Any], pictures: dict[str, str] | None = None) -> str:
  """summary.md: the table per set and tower, the verdict over the sets, the paper's claim beside it."""
  lines = ["# Tower specialisation of first-layer kernels", "",
           "Colour-specificity score per kernel w (h×w×3): g = w averaged over its 3 colour channels, "
           "score = ||w − g||² / ||w||² (0: grey, only luminance; 1: pure colour opponency). Towers are "
           "consecutive equal blocks of the output channels (tower 0 = the paper's GPU 1). AUC: the chance "
           "that a kernel of the more colour-specific tower scores above one of the other (0.5: no "
           "separation, 1: complete).", "",
           "| kernels | layer | tower | n | mean | median | quartiles | more colour-specific | AUC |",
           "|---|---|---:|---:|---:|---:|---|---:|---:|"]
  for e in summary["sets"]:
    for t in e["towers"]:
      first = t["tower"] == 0
      more = e.get("more_colour_tower")
      lines.append(
          f"| {e['label'] if first else ''} | {e['layer'] if first else ''} | {t['tower']} | {t['n']} "
          f"| {t['mean']:.3f} | {t['median']:.3f} | {t['q25']:.3f}–{t['q75']:.3f} "
          f"| {('tower %d' % more) if first and more is not None else ''} "
          f"| {('%.2f' % e['auc']) if first and 'auc' in e else ''} |")
  v = summary["verdict"]
  if v:
    if v["same_tower_every_time"]:
      which = f"the same tower (tower {0 if v['tower_counts'][0] else 1}) in all {v['sets']}"
    else:
      which = (f"tower 0 in {v['tower_counts'][0]} and tower 1 in {v['tower_counts'][1]} of the {v['sets']}; "
               "which tower it is varies between them")
    lines += ["", "## Over these kernel sets", "",
              f"The more colour-specific tower (higher median score) is {which} kernel sets. The towers' scores "
              f"separate with AUC {v['min_auc']:.2f} at the least and {v['mean_auc']:.2f} on average.", ""]
  lines += ["## The paper", "", PAPER_CLAIM, "",
            "In these terms the claim is: in every run one tower's scores are clearly higher than the other's "
            "(AUC near 1), and which tower that is may change from run to run."]
  if pictures:
    lines += ["", "## Pictures", ""] + [f"- {label}: ![{label}]({path})" for label, path in pictures.items()]
  return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- finding kernels


def first_conv(shapes: dict[str, tuple[int, ...]]) -> str:
  """The name of the 4-D kernel that reads the 3-channel image (every model here has exactly one)."""
  rgb = sorted(k for k, s in shapes.items() if k.endswith("kernel") and len(s) == 4 and s[2] == 3)
  if not rgb:
    raise KernelsError("No convolution kernel that reads 3 colour channels was found; name one with --layer.")
  return rgb[0]


def resolve_layer(shapes: dict[str, tuple[int, ...]], layer: str | None, prefix: str = "") -> str:
  """The array name of `layer` ('conv1', 'stem/conv', 'params/conv1/kernel'); its first conv by default."""
  if not layer:
    return first_conv({k: s for k, s in shapes.items() if k.startswith(prefix)})
  layer = layer.strip("/")
  for name in (layer, f"{layer}/kernel", f"{prefix}{layer}", f"{prefix}{layer}/kernel"):
    if name in shapes and len(shapes[name]) == 4:
      return name
  convs = sorted(k.removeprefix(prefix).removesuffix("/kernel") for k, s in shapes.items()
                 if k.startswith(prefix) and k.endswith("kernel") and len(s) == 4)
  raise KernelsError(f"--layer={layer!r} is not a convolution of this model; its convolutions are: "
                     f"{', '.join(convs) or 'none'}.")


def parse_steps(spec: str, available: Sequence[int]) -> list[int]:
  """'latest', 'all' or '100,2000' → the steps to draw, each one a kept checkpoint."""
  spec = (spec or "latest").strip()
  if spec == "latest":
    return [available[-1]]
  if spec == "all":
    return list(available)
  try:
    wanted = [int(s) for s in spec.split(",") if s.strip()]
  except ValueError:
    raise KernelsError(f"--steps={spec!r}: give latest, all, or comma-separated step numbers.") from None
  missing = [s for s in wanted if s not in available]
  if missing or not wanted:
    raise KernelsError(f"--steps={spec!r}: no checkpoint for step(s) {missing}; kept steps: {list(available)}.")
  return wanted


def run_towers(workdir: str) -> int:
  """config.model.towers of the run (its config.json), 1 when the model has no towers or it is absent."""
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      return int(json.load(f).get("model", {}).get("towers", 1) or 1)
  except (OSError, ValueError):
    return 1


def _checked(ks: KernelSet) -> KernelSet:
  n = ks.kernel.shape[3]
  if ks.towers < 1 or n % ks.towers:
    raise KernelsError(f"{ks.source}: {n} kernels do not split into {ks.towers} equal towers; pass --towers.")
  return ks


def from_workdir(workdir: str, steps: str = "latest", layer: str | None = None,
                 towers: int | None = None) -> list[KernelSet]:
  """The layer's kernels at each chosen step of a run's checkpoints."""
  from alexnet_jax import checkpoint
  if not os.path.isdir(workdir):
    raise KernelsError(f"--workdir={workdir!r} is not a folder; point it at a run folder.")
  available = checkpoint.complete_steps(workdir)
  if not available:
    raise KernelsError(f"No checkpoint in {workdir!r} (expected {checkpoint.checkpoint_dir(workdir)}/<step>/); "
                       "train first.")
  chosen = parse_steps(steps, available)
  name = resolve_layer(checkpoint.array_shapes(workdir, chosen[0]), layer, prefix="params/")
  short = name.removeprefix("params/").removesuffix("/kernel")
  towers = towers or run_towers(workdir)
  return [_checked(KernelSet(f"step_{s}", f"{workdir} step {s}", short,
                             checkpoint.restore_arrays(workdir, s, [name])[name], towers)) for s in chosen]


def from_npz(path: str, layer: str | None = None, towers: int | None = None) -> KernelSet:
  """A kernel array from an .npz: its only array, the one named by --layer, or its first conv."""
  try:
    with np.load(path) as data:
      arrays = {k: data[k] for k in data.files}
  except FileNotFoundError:
    raise KernelsError(f"--kernels: no such file {path!r}.") from None
  except (OSError, ValueError) as e:
    raise KernelsError(f"--kernels: {path!r} is not a readable .npz file ({e}).") from None
  if len(arrays) == 1 and not layer:
    name = next(iter(arrays))
  else:
    shapes = {k if k.endswith("kernel") else f"{k}/kernel": v.shape for k, v in arrays.items()}
    name = resolve_layer(shapes, layer, prefix="params/" if any(k.startswith("params/") for k in shapes) else "")
    name = name if name in arrays else name.removesuffix("/kernel")
  kernel = np.asarray(arrays[name], np.float32)
  if kernel.ndim != 4:
    raise KernelsError(f"{path!r}: array {name!r} has shape {kernel.shape}; expected an HWIO kernel "
                       "[h, w, in, out] such as AlexNet's conv1 (11, 11, 3, 96).")
  label = os.path.splitext(os.path.basename(path))[0]
  short = name.removeprefix("params/").removesuffix("/kernel")
  return _checked(KernelSet(label, path, short, kernel, towers or NPZ_TOWERS))


# ----------------------------------------------------------------------------- outputs


def write_scores(ks: KernelSet, out: str) -> list[str]:
  """<label>_scores.csv and .json: kernel index, tower, score."""
  s, tower = ks.scores(), ks.tower_of()
  csv_path, json_path = os.path.join(out, f"{ks.label}_scores.csv"), os.path.join(out, f"{ks.label}_scores.json")
  with open(csv_path, "w") as f:
    f.write("kernel,tower,score\n" + "".join(f"{i},{t},{v:.6f}\n" for i, (t, v) in enumerate(zip(tower, s))))
  with open(json_path, "w") as f:
    json.dump({"source": ks.source, "layer": ks.layer, "shape": list(ks.kernel.shape), "towers": ks.towers,
               "scores": [round(float(v), 6) for v in s], "tower": tower.tolist()}, f, indent=1)
  return [csv_path, json_path]


def write_outputs(sets: Sequence[KernelSet], out: str) -> list[str]:
  """Pictures, scores and the summary of every kernel set into the folder `out`; returns the paths."""
  from alexnet_jax.inspect import pictures
  os.makedirs(out, exist_ok=True)
  written: list[str] = []
  drawn: dict[str, str] = {}
  for ks in sets:
    path = os.path.join(out, f"{ks.label}_kernels.png")
    pictures.kernel_mosaic(ks.kernel, ks.towers, path, title=f"{ks.layer} of {ks.source}",
                           scores=ks.scores() if ks.rgb else None)
    written.append(path)
    drawn[ks.label] = os.path.basename(path)
    if ks.rgb:
      written += write_scores(ks, out)
      hist = os.path.join(out, f"{ks.label}_hist.png")
      pictures.score_histograms([(ks.label, ks.scores(), ks.tower_of())], hist)
      written.append(hist)
  steps = [ks for ks in sets if ks.label.startswith("step_")]
  if len(steps) > 1 and len({ks.kernel.shape for ks in steps}) == 1:
    path = os.path.join(out, "kernels_over_steps.png")
    pictures.kernels_over_steps([ks.kernel for ks in steps], [ks.label.replace("_", " ") for ks in steps],
                                steps[0].towers, path, title=f"{steps[0].layer} over training")
    written.append(path)
    drawn["over training"] = os.path.basename(path)
  rgb = [ks for ks in sets if ks.rgb]
  if rgb:
    summary = summarise(rgb)
    if len(rgb) > 1:
      hist = os.path.join(out, "hist_all.png")
      pictures.score_histograms([(ks.label, ks.scores(), ks.tower_of()) for ks in rgb], hist)
      written.append(hist)
      drawn["histograms"] = os.path.basename(hist)
    for name, text in (("summary.json", json.dumps(summary, indent=2)), ("summary.md", format_summary(summary, drawn))):
      path = os.path.join(out, name)
      with open(path, "w") as f:
        f.write(text)
      written.append(path)
  return written


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="alexnet-jax kernels", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", default="", help="a run folder: draw its checkpoints' kernels")
  p.add_argument("--kernels", default="", help="comma-separated .npz files of kernel arrays (instead of --workdir)")
  p.add_argument("--steps", default="latest", help="with --workdir: latest, all, or comma-separated steps")
  p.add_argument("--layer", default="", help="the convolution to draw (default: the one reading the image)")
  p.add_argument("--towers", type=int, default=0, help="equal groups of output channels (default: the run's "
                 f"config.model.towers; {NPZ_TOWERS} for .npz files)")
  p.add_argument("--out", default="", help="output folder (default <workdir>/kernels)")
  args = p.parse_args(argv)
  if bool(args.workdir) == bool(args.kernels):
    p.error("give exactly one of --workdir=<run folder> or --kernels=<a.npz,b.npz,...>.")
  if not args.out and not args.workdir:
    p.error("--kernels needs --out=<folder>.")
  return args


def main(argv: Sequence[str] | None = None) -> list[str]:
  args = parse_args(argv)
  if args.towers < 0:
    raise KernelsError(f"--towers={args.towers} must be positive.")
  towers = args.towers or None
  if args.workdir:
    sets = from_workdir(args.workdir, args.steps, args.layer or None, towers)
  else:
    sets = [from_npz(p.strip(), args.layer or None, towers) for p in args.kernels.split(",") if p.strip()]
  out = args.out or os.path.join(args.workdir, "kernels")
  written = write_outputs(sets, out)
  summary = os.path.join(out, "summary.md")
  print(f"Wrote {len(written)} files to {out}" + (f"; the tower summary is {summary}" if summary in written else ""))
  return written


def run(argv: Sequence[str] | None = None) -> int:
  """main() for the command line: a mistake the user can fix is one line and exit code 2."""
  from alexnet_jax import console
  console.quiet(import_tensorflow=False)
  try:
    main(argv)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(run())
