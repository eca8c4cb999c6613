"""The seed table of a sweep run with `--seeds`: each member against the baseline, paired by seed.

For a member M and the baseline B, d_seed = M_seed − B_seed (top-1, accuracy points) over the
seeds both counted. Per member the table gives n, the mean and sd of d, its Student-t interval,
the Holm-adjusted p-value over the sweep's family, the Holm-corrected interval, a verdict, the
minimum detectable effect, and the paper's Δ with whether its sign matches (only when resolved).
The statistics are those of experiments/stats.py.

- A run counts when it finished, or (with `min_epochs`) when it ran at least that many epochs.
- A pair counts only when the member's run stopped where the baseline's run of the same seed
  did (the same number of steps; the same stopping rule). Without such a pair: "not comparable".
- A member any of whose counted runs did not train (top-1 within 5 points of chance, or the
  final training loss still at ln(num_classes)) gets no verdict: "did not train". A baseline
  run that did not train takes its seed out of every pair.
- The family for Holm's correction is every member with at least two pairs and a verdict.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping, Sequence

from experiments import stats


@dataclasses.dataclass
class Group:
  """One member over its seeds: the counted runs (each a `aggregate.MemberResult`), by seed."""

  name: str
  runs: dict[int, Any]
  skipped: dict[int, str]  # seed → why it was not counted
  paper: Mapping[str, Any] | None = None

  def values(self, key: str) -> dict[int, float]:
    return {s: 100 * m.metric(key) for s, m in self.runs.items() if m.metric(key) is not None}


def _epochs(m) -> float:
  s = m.summary or {}
  if s.get("epoch") is not None:
    return float(s["epoch"])
  return m.eval_curve[-1][0] if m.eval_curve else 0.0


def seed_groups(members: Sequence[Any], min_epochs: float | None = None) -> list[Group]:
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


def _untrained(m, num_classes: int | None) -> bool:
  k = (m.summary or {}).get("num_classes") or num_classes
  top1 = m.metric("top1")
  return stats.did_not_train(None if top1 is None else 100 * top1, k, m.train_loss)


def _where(f: tuple[str, float] | None) -> str:
  return "an unknown point" if f is None else f"{f[0]} {f[1]:g}"


@dataclasses.dataclass
class SeedStudy:
  """Everything the seed table prints: per member its comparison and the seeds left out."""

  baseline: str
  comparisons: dict[str, stats.Comparison]
  notes: dict[str, list[str]]
  alpha: float
  target: float
  margin: float | None
  baseline_seeds: tuple[int, ...] = ()  # the baseline's seeds that trained: those pairs can use

  @property
  def family(self) -> list[str]:
    return [n for n, c in self.comparisons.items() if c.holm is not None]


def study(groups: Sequence[Group], baseline: str, alpha: float = 0.05, target: float = 0.8,
          margin: float | None = None, num_classes: int | None = None, key: str = "top1") -> SeedStudy:
  """Pairs every member with the baseline seed by seed and runs `stats.compare` on the pairs.

  `baseline` may name the group or one of its runs (`baseline-seed=0`).
  """
  baseline = re.sub(r"-seed=\d+$", "", baseline)
  base = next((g for g in groups if g.name == baseline), None)
  notes: dict[str, list[str]] = {g.name: [f"seed {s}: {why}" for s, why in sorted(g.skipped.items())]
                                 for g in groups}
  base_values: dict[int, float] = {}
  if base is not None:
    for s, m in sorted(base.runs.items()):
      if _untrained(m, num_classes):
        notes[base.name].append(f"seed {s}: did not train")
      elif m.metric(key) is not None:
        base_values[s] = 100 * m.metric(key)
  pairs: dict[str, stats.Paired] = {}
  excluded: dict[str, str] = {}
  for g in groups:
    if g is base:
      continue
    untrained = sorted(s for s, m in g.runs.items() if _untrained(m, num_classes))
    values = {}
    for s, v in sorted(g.values(key).items()):
      if s not in base_values:
        continue
      mine, theirs = g.runs[s].finished, base.runs[s].finished
      if mine != theirs:
        notes[g.name].append(f"seed {s}: stopped at {_where(mine)}, the baseline at {_where(theirs)}")
      else:
        values[s] = v
    pairs[g.name] = stats.paired(values, base_values)
    if untrained:
      excluded[g.name] = "did not train"
      notes[g.name].append("did not train: seed(s) " + ",".join(map(str, untrained)))
    elif not values and any(s in base_values for s in g.values(key)):
      excluded[g.name] = "not comparable"
  return SeedStudy(baseline, stats.compare(pairs, excluded, alpha, target, margin), notes, alpha, target, margin,
                   tuple(sorted(base_values)))


def _points(value: float | None) -> str:
  return "" if value is None else f"{value:+.2f}"


def _interval(iv: tuple[float, float] | None) -> str:
  return "" if iv is None else f"[{iv[0]:+.2f}, {iv[1]:+.2f}]"


def _p(p: float | None) -> str:
  return "" if p is None else (f"{p:.3f}" if p >= 0.001 else "<0.001")


def seed_rows(groups: Sequence[Group], result: SeedStudy) -> list[dict[str, str]]:
  """One row per member (the baseline first as it comes in the sweep)."""
  rows = []
  for g in groups:
    row = {k: "" for k, _ in SEED_COLUMNS}
    row["member"] = g.name
    row["seeds"] = ",".join(map(str, sorted(g.runs))) or "-"
    v = list(g.values("top1").values())
    if v:
      mean = sum(v) / len(v)
      sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else None
      row["top1"] = f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")
    paper = (g.paper or {}).get("top1")
    row["paper_d_top1"] = _points(paper)
    row["paper_note"] = (g.paper or {}).get("note", "")
    row["not_counted"] = "; ".join(result.notes.get(g.name, []))
    c = result.comparisons.get(g.name)
    if g.name == result.baseline:
      row["verdict"] = "baseline"
      row["n"] = str(len(result.baseline_seeds))
    elif c is not None:
      pr = c.pairs
      row["n"] = str(pr.n)
      if c.status != "did not train":  # its difference is a failure to train, not an effect
        row["d_top1"] = _points(pr.mean)
        row["sd_d"] = "" if pr.sd is None else f"{pr.sd:.2f}"
      row["ci"], row["ci_holm"] = _interval(c.interval), _interval(c.corrected)
      row["p_holm"] = _p(c.holm.p_adjusted) if c.holm else ""
      row["mde"] = "" if c.mde is None else f"{c.mde:.2f}"
      row["verdict"] = (f"equivalent within ±{result.margin:g}" if c.status == "equivalent" else c.status)
      if c.resolved and paper is not None:
        row["sign"] = "matches" if (pr.mean > 0) == (paper > 0) else "opposite"
    rows.append(row)
  return rows


SEED_COLUMNS = [("member", "member"), ("n", "n (pairs)"), ("seeds", "seeds counted"),
                ("top1", "top-1 % (mean ± sd)"), ("d_top1", "Δ top-1 (paired mean)"), ("sd_d", "sd of d"),
                ("ci", "95% t interval"), ("p_holm", "Holm p"), ("ci_holm", "Holm interval"),
                ("verdict", "verdict"), ("mde", "MDE (80%)"), ("paper_d_top1", "paper Δ top-1"),
                ("sign", "sign vs paper"), ("not_counted", "not counted"), ("paper_note", "paper says")]


def header(result: SeedStudy, min_epochs: float | None) -> str:
  """The paragraph above the table: every rule and parameter the numbers rest on."""
  a, m = result.alpha, len(result.family)
  rule = ("finished runs" if min_epochs is None
          else f"finished runs and runs stopped after at least {min_epochs:g} epochs")
  margin = (f"Equivalence margin, fixed before the runs: ±{result.margin:g} points; 'equivalent' means "
            f"both one-sided paired t tests (TOST) reject at α = {a:g} (the {100 * (1 - 2 * a):g}% interval "
            "lies inside the margin)." if result.margin is not None else
            "No equivalence margin was set, so no member is called equal to the baseline: "
            "'unresolved' means only that the data cannot tell.")
  return (f"Counted: {rule}. A pair counts only when the member stopped at the same step as the baseline's "
          f"run of that seed. d = member − `{result.baseline}` per seed, in top-1 accuracy points "
          "(negative: the change hurt); Δ is the mean of d over n pairs. 95% t interval: "
          "Δ ± t(0.975; n−1)·sd/√n. Holm: step-down over the "
          f"{m} member(s) tested (family-wise α = {a:g}); the Holm interval is the t interval at the level "
          "Holm tests the member at, α/(m−r+1) with r its rank (or the rank where the procedure stopped). "
          "Resolved: the Holm interval excludes 0. "
          f"MDE: the smallest |Δ| the paired t test at α/m = {a / max(m, 1):.4g} (two-sided) finds with "
          f"{100 * result.target:g}% power at this n and sd of d (exact, noncentral t). " + margin +
          " Did not train: a counted run within 5 points of chance top-1 (100/classes) or with its final "
          "training loss at ln(classes); such a member gets no verdict and is outside the family. "
          "Paper Δ: the ImageNet effect the paper reports; its sign is compared only when resolved.")


def seed_markdown(rows: Sequence[Mapping[str, str]], result: SeedStudy, title: str, command: str | None,
                  min_epochs: float | None, provenance: str) -> str:
  lines = [f"# {title}", "", provenance, *([f"Command: `{command}`"] if command else []), "",
           header(result, min_epochs), "",
           "| " + " | ".join(h for _, h in SEED_COLUMNS) + " |", "|" + "|".join("---" for _ in SEED_COLUMNS) + "|"]
  for r in rows:
    lines.append("| " + " | ".join(str(r[k]).replace("|", "\\|") for k, _ in SEED_COLUMNS) + " |")
  return "\n".join(lines) + "\n"
