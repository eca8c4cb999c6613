"""Regenerates every published table and quoted number from the committed records.

  python -m experiments.regenerate            # rewrite what differs
  python -m experiments.regenerate --check    # write nothing; print a short diff of what differs, exit 1
  python -m experiments.regenerate --root=<checkout>   # another copy of the tree
  python -m experiments.regenerate --plots    # also redraw the plots drawn from committed records

What it writes is the registry `TARGETS` below: whole files under experiments/results/ (tables of
each study, computed by experiments/results_tables.py from the study's record) and named blocks in
README.md, BENCHMARKS.md and the results notes, each between

  <!-- generated: <name> -->
  ...
  <!-- end generated -->

(experiments/results_docs.py renders them). Text outside the blocks is never touched. The output
depends on the records alone: no date of regeneration, no host of the machine running this.
A new record plugs in by one `Target` line: its path (and block name) and a function of the root;
a study in the records layout (<study>/runs/) needs none (`all_targets`).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import sys
from typing import Callable, Sequence

from alexnet_jax import atomic
from experiments import results_docs as docs
from experiments import results_tables as tables

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIFF_LINES = 40  # per file, in --check


@dataclasses.dataclass(frozen=True)
class Target:
  """One generated file (block=None) or one named block inside a file."""

  path: str                       # relative to the root, '/'-separated
  render: Callable[[str], str]    # root -> text
  block: str | None = None


def _study(render, study: str) -> Callable[[str], str]:
  return lambda root: render(root, study)


def _results(study: str, *files: str) -> list[Target]:
  makers = {"results.md": tables.render_results_md, "seeds.md": tables.render_seeds_md,
            "seeds.csv": tables.render_seeds_csv, "results.csv": tables.render_results_csv,
            "figure1.md": tables.render_figure1_md, "figure1.json": tables.render_figure1_json,
            "summary.md": tables.render_towers_md}
  return [Target(f"experiments/results/{study}/{f}", _study(makers[f], study)) for f in files]


TARGETS: list[Target] = [
    *_results("imagenette_alexnet", "results.md", "seeds.md", "seeds.csv"),
    *_results("imagenette_leaderboard", "results.md"),
    *_results("alexnet_ablations", "results.md"),
    *_results("figure1_lr", "figure1.json", "figure1.md"),
    *_results("figure1", "figure1.json", "figure1.md"),
    *_results("tower_specialisation", "summary.md"),
    Target("experiments/results/RERUN.md", docs.render_rerun),
    Target("experiments/results/gpu_campaign.md", docs.render_campaign_counts, "campaign-counts"),
    Target("experiments/results/imagenette_alexnet/README.md", docs.render_converged_run, "converged-run"),
    Target("experiments/results/imagenette_alexnet/README.md", lambda root: docs.render_ablations(root, "seeds.md"),
           "ablations"),
    Target("experiments/results/bf16_parity.md", docs.render_bf16, "bf16-converged"),
    Target("README.md", docs.render_readme_results, "readme-results"),
    Target("README.md", docs.render_ablations, "readme-ablations"),
    Target("BENCHMARKS.md", docs.bench_block("cpu_step"), "bench-cpu-step"),
    Target("BENCHMARKS.md", docs.bench_block("gpu_step"), "bench-gpu-step"),
    Target("BENCHMARKS.md", docs.bench_block("store_read"), "bench-store-read"),
]


# Plots drawn from committed records. PNG bytes depend on the matplotlib version, so --check leaves them out.
PLOTS: list[Callable[[str], str]] = [_study(tables.draw_figure1, "figure1_lr"), _study(tables.draw_figure1, "figure1")]


def all_targets(root: str) -> list[Target]:
  """TARGETS, plus the tables of every study in the records layout (<study>/runs/) that TARGETS does not
  name: results.md and results.csv, and seeds.md and seeds.csv when its runs are named by seed. A
  study imported by `python -m experiments.campaign import` is thereby regenerated with no code change."""
  named = {t.path for t in TARGETS}
  extra = []
  results = os.path.join(root, tables.RESULTS)
  for study in sorted(os.listdir(results)) if os.path.isdir(results) else []:
    if not tables.has_runs(root, study):
      continue
    files = ["results.md", "results.csv"] + (["seeds.md", "seeds.csv"] if tables.seeded(root, study) else [])
    extra += [t for t in _results(study, *files) if t.path not in named]
  return TARGETS + extra


class BlockError(Exception):
  """A file lacks the markers of a block the registry names (or has them twice)."""


def _block_re(name: str) -> re.Pattern:
  return re.compile(r"(<!-- generated: " + re.escape(name) + r" -->\n)(.*?)(<!-- end generated -->)", re.S)


def replace_block(text: str, name: str, body: str, path: str) -> str:
  found = _block_re(name).findall(text)
  if len(found) != 1:
    raise BlockError(f"{path}: expected one '<!-- generated: {name} -->' ... '<!-- end generated -->' block, "
                     f"found {len(found)}")
  body = body if body.endswith("\n") else body + "\n"
  return _block_re(name).sub(lambda m: m.group(1) + body + m.group(3), text)


def _read(path: str) -> str | None:
  try:
    with open(path, encoding="utf-8", newline="") as f:
      return f.read()
  except FileNotFoundError:
    return None


def expected(root: str, targets: Sequence[Target] | None = None) -> dict[str, tuple[str | None, str]]:
  """{path: (text on disk or None, text the records give)} for every file the registry touches."""
  out: dict[str, tuple[str | None, str]] = {}
  for t in all_targets(root) if targets is None else targets:
    full = os.path.join(root, *t.path.split("/"))
    old = _read(full) if t.path not in out else out[t.path][0]
    current = out[t.path][1] if t.path in out else old
    if t.block is None:
      new = t.render(root)
    else:
      if current is None:
        raise BlockError(f"{t.path} is missing; it should hold the block '{t.block}'")
      new = replace_block(current, t.block, t.render(root), t.path)
    out[t.path] = (old, new)
  return out


def short_diff(path: str, old: str | None, new: str, limit: int = DIFF_LINES) -> str:
  lines = list(difflib.unified_diff((old or "").splitlines(), new.splitlines(), f"a/{path}", f"b/{path}",
                                    lineterm="", n=1))
  if len(lines) > limit:
    lines = lines[:limit] + [f"... ({len(lines) - limit} more diff lines)"]
  return "\n".join(lines)


def run(root: str, check: bool, out=sys.stdout) -> int:
  """0 when every file matches its records (or, without check, after rewriting those that did not)."""
  files = expected(root)
  differ = [(p, old, new) for p, (old, new) in files.items() if old != new]
  if check:
    for p, old, new in differ:
      print(short_diff(p, old, new), file=out)
    if differ:
      print(f"{len(differ)} file(s) differ from their records: " + ", ".join(p for p, _, _ in differ)
            + "\nrun `python -m experiments.regenerate` and commit the result.", file=out)
      return 1
    print(f"All {len(files)} generated files match their records.", file=out)
    return 0
  for p, _, new in differ:
    full = os.path.join(root, *p.split("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with atomic.write(full, encoding="utf-8", newline="") as f:
      f.write(new)
  print(f"Rewrote {len(differ)} file(s)" + (": " + ", ".join(p for p, _, _ in differ) if differ else "."), file=out)
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.regenerate", description=__doc__.split("\n")[0])
  p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs from its records")
  p.add_argument("--root", default=REPO, help="the tree to regenerate (default: this checkout)")
  p.add_argument("--plots", action="store_true",
                 help="also redraw the plots whose records are committed (PLOTS); never part of --check")
  flags = p.parse_args(argv)
  if not os.path.isdir(os.path.join(flags.root, "experiments", "results")):
    print(f"error: --root={flags.root}: no experiments/results/ folder there", file=sys.stderr)
    return 2
  try:
    if flags.plots and not flags.check:
      print("Redrew " + ", ".join(os.path.relpath(draw(flags.root), flags.root) for draw in PLOTS))
    return run(flags.root, flags.check)
  except (tables.RecordError, BlockError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyError as e:
    print(f"error: a record lacks the field {e}; nothing was written", file=sys.stderr)
    return 2
  except ValueError as e:
    print(f"error: a record holds a value that cannot be read ({e}); nothing was written", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
