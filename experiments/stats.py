"""Statistics for comparing sweep members with their baseline over seeds (pure functions, no I/O).

The design is paired: a member and its baseline trained with the same seed share the
initialisation and the data order, so the comparison is made on the per-seed differences
d_i = member_i − baseline_i, over the seeds both have.

- `paired`: n, mean and standard deviation of the d_i.
- `t_interval`: Student's t interval on the mean difference, mean ± t(1 − a/2; n − 1)·sd/√n.
- `t_test_p`: two-sided p-value of the paired t test (the same as scipy.stats.ttest_rel).
- `holm`: Holm's step-down correction over a family of p-values, with the adjusted p-values and
  the level at which each member's corrected interval is drawn (see its docstring).
- `power`, `min_detectable_effect`, `seeds_needed`: the paired t test's exact power from the
  noncentral t distribution, the smallest effect found with a given power, and the number of
  seeds needed for a given effect.
- `tost`: the two one-sided tests for equivalence within ±margin, a margin fixed beforehand.
- `did_not_train`: a run at chance accuracy or still at the loss of a uniform guess.
- `compare`: one member against the baseline, every number the seed table prints.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

from scipy import optimize
from scipy import stats as sps


@dataclasses.dataclass(frozen=True)
class Paired:
  """Differences member − baseline over the seeds both have, in the values' units."""

  seeds: tuple[int, ...]
  diffs: tuple[float, ...]

  @property
  def n(self) -> int:
    return len(self.diffs)

  @property
  def mean(self) -> float | None:
    return sum(self.diffs) / self.n if self.diffs else None

  @property
  def sd(self) -> float | None:
    """The sample standard deviation (divisor n − 1); None below two pairs."""
    if self.n < 2:
      return None
    m = self.mean
    return math.sqrt(sum((d - m) ** 2 for d in self.diffs) / (self.n - 1))


def paired(member: Mapping[int, float], baseline: Mapping[int, float]) -> Paired:
  """d_seed = member[seed] − baseline[seed] for every seed in both, in ascending seed order."""
  seeds = tuple(sorted(set(member) & set(baseline)))
  return Paired(seeds, tuple(float(member[s]) - float(baseline[s]) for s in seeds))


def t_interval(mean: float, sd: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
  """Two-sided 1 − alpha Student-t interval on a mean of n values with standard deviation sd."""
  if n < 2:
    raise ValueError(f"a t interval needs at least 2 values, got {n}")
  half = sps.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
  return float(mean - half), float(mean + half)


def t_test_p(mean: float, sd: float, n: int) -> float:
  """Two-sided p-value of H0: the mean difference is 0 (paired t, n − 1 degrees of freedom).

  With sd = 0 the differences are all equal: p is 0 when they are not zero, else 1.
  """
  if n < 2:
    raise ValueError(f"a t test needs at least 2 values, got {n}")
  if sd == 0:
    return 0.0 if mean != 0 else 1.0
  t = mean / (sd / math.sqrt(n))
  return float(2 * sps.t.sf(abs(t), n - 1))


@dataclasses.dataclass(frozen=True)
class HolmResult:
  rank: int          # 1 for the smallest p-value
  p_adjusted: float  # max over ranks j ≤ rank of min(1, (m − j + 1)·p_(j))
  level: float       # two-sided level of the member's corrected interval
  rejected: bool     # p_adjusted < alpha


def holm(pvalues: Mapping[str, float], alpha: float = 0.05) -> dict[str, HolmResult]:
  """Holm's step-down correction over the family `pvalues` (name → raw p), at family-wise alpha.

  Sorted by p (ties in name order), the member of rank i is tested at alpha/(m − i + 1), and the
  procedure stops at the first rank k that is not rejected; every later rank is kept too.
  Corrected interval: each member's interval is drawn at level alpha/(m − r + 1) with
  r = min(i, k), the level at which Holm's procedure decides it. A member's interval then
  excludes 0 exactly when Holm rejects it (p_(i) < alpha/(m − i + 1) for every rank up to i, and
  later members have p ≥ p_(k) > alpha/(m − k + 1)). Intervals of the rejected members at these
  levels are the step-down intervals; they are narrower than Bonferroni's alpha/m.
  """
  order = sorted(pvalues, key=lambda name: (pvalues[name], name))
  m = len(order)
  out: dict[str, HolmResult] = {}
  running = 0.0
  stopped_at: int | None = None
  for i, name in enumerate(order, start=1):
    running = max(running, min(1.0, (m - i + 1) * pvalues[name]))
    if stopped_at is None and not pvalues[name] < alpha / (m - i + 1):
      stopped_at = i
    r = i if stopped_at is None else stopped_at
    out[name] = HolmResult(i, running, alpha / (m - r + 1), running < alpha)
  return out


def power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
  """Exact power of the two-sided paired t test at level alpha for a true mean difference `effect`.

  The statistic follows a noncentral t with n − 1 degrees of freedom and noncentrality
  effect·√n/sd; power = P(T > c) + P(T < −c), c = t(1 − alpha/2; n − 1). The lower tail is
  taken as the upper tail at −noncentrality (the same value; scipy's cdf there can return NaN
  far in the tail, its sf does not).
  """
  if n < 2 or sd <= 0:
    raise ValueError(f"power needs n ≥ 2 and sd > 0, got n={n}, sd={sd}")
  c = sps.t.ppf(1 - alpha / 2, n - 1)
  nc = effect * math.sqrt(n) / sd
  return float(sps.nct.sf(c, n - 1, nc) + sps.nct.sf(c, n - 1, -nc))


def min_detectable_effect(sd: float, n: int, alpha: float = 0.05, target: float = 0.8) -> float:
  """The smallest |mean difference| the two-sided paired t test finds with probability `target`.

  Solved numerically (Brent's method) on the exact noncentral-t power: power(effect) = target.
  Power rises with the effect, from alpha at 0; the bracket is widened until it holds the root.
  """
  if not alpha < target < 1:
    raise ValueError(f"target power must lie between alpha and 1, got {target}")
  hi = sd
  while power(hi, sd, n, alpha) < target:
    hi *= 2
  return float(optimize.brentq(lambda e: power(e, sd, n, alpha) - target, 0.0, hi, xtol=1e-10 * sd))


def seeds_needed(effect: float, sd: float, alpha: float = 0.05, target: float = 0.8,
                 most: int = 10_000) -> int:
  """The fewest seeds (pairs, ≥ 2) whose paired t test finds `effect` with power ≥ target.

  sd is the measured standard deviation of the paired differences.
  """
  if effect == 0 or sd <= 0:
    raise ValueError(f"seeds_needed needs a non-zero effect and sd > 0, got {effect}, {sd}")
  for n in range(2, most + 1):
    if power(abs(effect), sd, n, alpha) >= target:
      return n
  raise ValueError(f"more than {most} seeds are needed for effect {effect} with sd {sd}")


@dataclasses.dataclass(frozen=True)
class Tost:
  p: float                       # the larger of the two one-sided p-values
  interval: tuple[float, float]  # the 1 − 2·alpha t interval
  equivalent: bool               # p < alpha: the interval lies inside (−margin, margin)


def tost(mean: float, sd: float, n: int, margin: float, alpha: float = 0.05) -> Tost:
  """Two one-sided paired t tests of H0: |mean difference| ≥ margin (Schuirmann's TOST).

  p_low tests H0: Δ ≤ −margin, p_high tests H0: Δ ≥ margin; equivalence within ±margin is
  claimed when both are below alpha, which is the same as the 1 − 2·alpha interval lying inside.
  """
  if margin <= 0:
    raise ValueError(f"the equivalence margin must be positive, got {margin}")
  if n < 2:
    raise ValueError(f"an equivalence test needs at least 2 values, got {n}")
  if sd == 0:
    inside = -margin < mean < margin
    return Tost(0.0 if inside else 1.0, (mean, mean), inside)
  se = sd / math.sqrt(n)
  p_low = sps.t.sf((mean + margin) / se, n - 1)
  p_high = sps.t.cdf((mean - margin) / se, n - 1)
  p = float(max(p_low, p_high))
  return Tost(p, t_interval(mean, sd, n, 2 * alpha), p < alpha)


def did_not_train(top1_pct: float | None, num_classes: int | None, train_loss: float | None = None,
                  within_pts: float = 5.0, loss_margin: float = 0.05) -> bool:
  """True for a run whose top-1 (percent) is within `within_pts` of chance, 100/num_classes, or
  whose final training loss is still at (or above) ln(num_classes) − loss_margin nats.

  Without num_classes nothing can be judged, and the run counts as trained.
  """
  if not num_classes or num_classes < 2:
    return False
  if top1_pct is not None and top1_pct <= 100 / num_classes + within_pts:
    return True
  return train_loss is not None and train_loss >= math.log(num_classes) - loss_margin


@dataclasses.dataclass
class Comparison:
  """One member against the baseline: what the seed table shows."""

  name: str
  pairs: Paired
  status: str                                  # see `compare`
  interval: tuple[float, float] | None = None  # uncorrected 1 − alpha t interval
  p: float | None = None
  holm: HolmResult | None = None
  corrected: tuple[float, float] | None = None
  mde: float | None = None
  equivalence: Tost | None = None

  @property
  def resolved(self) -> bool:
    return self.corrected is not None and (self.corrected[0] > 0 or self.corrected[1] < 0)


def compare(pairs_by_member: Mapping[str, Paired], excluded: Mapping[str, str], alpha: float = 0.05,
            target: float = 0.8, margin: float | None = None) -> dict[str, Comparison]:
  """Paired t statistics for every member, Holm-corrected over the members that can be tested.

  `excluded` maps a member to why it gets no verdict ("did not train", "not comparable"); such a
  member and any with fewer than 2 pairs ("too few seeds") stay out of the family. Status of
  the others: "resolved" (corrected interval excludes 0), else "equivalent" when a margin is
  given and TOST at alpha passes, else "unresolved". The minimum detectable effect is at
  the family's first Holm level, alpha/m (two-sided, power `target`).
  """
  out: dict[str, Comparison] = {}
  for name, pr in pairs_by_member.items():
    if name in excluded:
      out[name] = Comparison(name, pr, excluded[name])
    elif pr.n < 2:
      out[name] = Comparison(name, pr, "too few seeds")
    else:
      c = Comparison(name, pr, "", t_interval(pr.mean, pr.sd, pr.n, alpha), t_test_p(pr.mean, pr.sd, pr.n))
      out[name] = c
  family = {n: c.p for n, c in out.items() if c.p is not None}
  corrections = holm(family, alpha)
  for name, h in corrections.items():
    c = out[name]
    pr = c.pairs
    c.holm = h
    c.corrected = t_interval(pr.mean, pr.sd, pr.n, h.level)
    c.mde = min_detectable_effect(pr.sd, pr.n, alpha / len(family), target) if pr.sd > 0 else None
    if margin is not None:
      c.equivalence = tost(pr.mean, pr.sd, pr.n, margin, alpha)
    c.status = ("resolved" if c.resolved else
                "equivalent" if c.equivalence is not None and c.equivalence.equivalent else "unresolved")
  return out
