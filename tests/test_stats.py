"""The seed statistics against values computed by hand, closed forms and published tables."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from experiments import stats


def test_paired_differences_use_shared_seeds_in_order():
  pr = stats.paired({7: 9.0, 2: 4.0, 0: 3.0, 1: 5.0}, {0: 1.0, 1: 2.0, 2: 4.0, 3: 0.0})
  assert pr.seeds == (0, 1, 2) and pr.diffs == (2.0, 3.0, 0.0) and pr.n == 3
  # mean 5/3; squared deviations 1/9 + 16/9 + 25/9 = 42/9, over n − 1 = 2: sd = √(7/3).
  assert pr.mean == pytest.approx(5 / 3, abs=1e-12) and pr.sd == pytest.approx(math.sqrt(7 / 3), abs=1e-12)
  one = stats.paired({0: 1.0}, {0: 3.0})
  assert (one.n, one.mean, one.sd) == (1, -2.0, None)
  none = stats.paired({1: 1.0}, {0: 3.0})
  assert (none.n, none.mean, none.sd) == (0, None, None)


def test_t_interval_matches_closed_forms_and_ttest_rel():
  # With 2 degrees of freedom t(p) = (2p − 1)/√(2p(1 − p)): t(0.975) = 0.95/√0.04875 = 4.30265.
  t975 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
  assert t975 == pytest.approx(4.302652729749464, abs=1e-9)
  lo, hi = stats.t_interval(5 / 3, math.sqrt(7 / 3), 3)
  half = t975 * math.sqrt(7 / 3) / math.sqrt(3)              # 3.7949
  assert (lo, hi) == pytest.approx((5 / 3 - half, 5 / 3 + half), abs=1e-9)
  assert (lo, hi) == pytest.approx((-2.12792, 5.46125), abs=1e-5)
  # One degree of freedom is the Cauchy: t(p) = tan(π(p − 1/2)); at p = 0.975, 12.7062.
  lo, hi = stats.t_interval(1.0, 2.0, 2)
  assert hi - 1.0 == pytest.approx(math.tan(math.pi * 0.475) * 2.0 / math.sqrt(2), abs=1e-9)
  # The same interval and p-value as scipy's paired test.
  member, base = [68.0, 71.0, 69.0, 70.0, 72.5], [70.0, 72.0, 71.0, 73.0, 72.0]
  pr = stats.paired(dict(enumerate(member)), dict(enumerate(base)))
  ref = sps.ttest_rel(member, base)
  assert stats.t_interval(pr.mean, pr.sd, pr.n) == pytest.approx(tuple(ref.confidence_interval(0.95)), abs=1e-9)
  assert stats.t_test_p(pr.mean, pr.sd, pr.n) == pytest.approx(ref.pvalue, rel=1e-9)
  assert stats.t_interval(pr.mean, pr.sd, pr.n, alpha=0.01) == pytest.approx(
      tuple(ref.confidence_interval(0.99)), abs=1e-9)
  with pytest.raises(ValueError, match="at least 2"):
    stats.t_interval(1.0, 1.0, 1)


def test_t_test_p_closed_form_and_degenerate_cases():
  # df = 2: P(|T| > t) = 1 − t/√(2 + t²). mean 5/3, sd √(7/3), n 3: t = (5/3)/(√(7/3)/√3) = 5/√7.
  t = 5 / math.sqrt(7)
  assert stats.t_test_p(5 / 3, math.sqrt(7 / 3), 3) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
  assert stats.t_test_p(-5 / 3, math.sqrt(7 / 3), 3) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
  assert stats.t_test_p(2.0, 0.0, 4) == 0.0 and stats.t_test_p(0.0, 0.0, 4) == 1.0
  assert stats.t_test_p(0.0, 1.0, 4) == 1.0


def test_holm_four_members_by_hand():
  # Sorted: d 0.005, a 0.01, c 0.03, b 0.04; multipliers 4, 3, 2, 1.
  # Adjusted: 0.02, 0.03, max(0.03, 0.06) = 0.06, max(0.06, 0.04) = 0.06.
  # Tests: 0.005 < 0.0125 yes, 0.01 < 0.05/3 yes, 0.03 < 0.025 no → stop; b is kept as well
  # although its own 0.04 < 0.05 would pass alone.
  h = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
  assert [h[n].rank for n in "dacb"] == [1, 2, 3, 4]
  assert [h[n].p_adjusted for n in "dacb"] == pytest.approx([0.02, 0.03, 0.06, 0.06], abs=1e-15)
  assert [h[n].rejected for n in "dacb"] == [True, True, False, False]
  assert [h[n].level for n in "dacb"] == pytest.approx([0.0125, 0.05 / 3, 0.025, 0.025], abs=1e-15)
  # Monotone adjusted p: (0.01·2 = 0.02, then max(0.02, 0.012)); capped at 1.
  h = stats.holm({"x": 0.012, "y": 0.01})
  assert h["y"].p_adjusted == pytest.approx(0.02) and h["x"].p_adjusted == pytest.approx(0.02)
  assert stats.holm({"x": 0.6, "y": 0.7})["x"].p_adjusted == 1.0
  # Ties go in name order; one member is an uncorrected test.
  h = stats.holm({"xa": 0.01, "ab": 0.01})
  assert (h["ab"].rank, h["xa"].rank) == (1, 2)
  assert stats.holm({"z": 0.04})["z"] == stats.HolmResult(1, 0.04, 0.05, True)
  assert stats.holm({}) == {}


def test_holm_intervals_exclude_zero_exactly_when_holm_rejects():
  rng = np.random.default_rng(0)
  for trial in range(40):
    pairs = {f"m{i}": stats.paired(dict(enumerate(rng.normal(rng.uniform(-1.5, 1.5), 1.0, 5))),
                                   dict(enumerate(np.zeros(5)))) for i in range(4)}
    result = stats.compare(pairs, {})
    for c in result.values():
      assert c.resolved == c.holm.rejected, (trial, c)
      assert (c.status == "resolved") == c.holm.rejected


def test_min_detectable_effect_has_the_target_power():
  for sd, n, alpha in [(1.0, 5, 0.05), (0.87, 2, 0.05), (2.5, 10, 0.05 / 8), (1.3, 3, 0.01)]:
    mde = stats.min_detectable_effect(sd, n, alpha)
    c = sps.t.ppf(1 - alpha / 2, n - 1)
    nc = mde * math.sqrt(n) / sd
    assert sps.nct.sf(c, n - 1, nc) + sps.nct.sf(c, n - 1, -nc) == pytest.approx(0.80, abs=1e-8)
  # The lower tail at +noncentrality equals the upper tail at −noncentrality (scipy's cdf form).
  c, nc = sps.t.ppf(0.975, 4), 0.5 * math.sqrt(5)
  assert stats.power(0.5, 1.0, 5) == pytest.approx(sps.nct.sf(c, 4, nc) + sps.nct.cdf(-c, 4, nc), rel=1e-10)
  # Scales with sd/√n's effect size: dz = MDE/sd depends only on n and alpha.
  assert stats.min_detectable_effect(3.0, 5) == pytest.approx(3 * stats.min_detectable_effect(1.0, 5), rel=1e-8)
  # Far above the normal approximation (z₀.₉₇₅ + z₀.₈)/√n for few seeds, close to it for many.
  assert stats.min_detectable_effect(1.0, 5) == pytest.approx(1.68200, abs=1e-4)
  assert stats.min_detectable_effect(1.0, 400) == pytest.approx((1.959964 + 0.841621) / 20, rel=0.005)


def test_min_detectable_effect_against_simulated_power():
  # 40,000 simulated sets of 5 pairs with the true difference at the MDE: ≈ 80% rejections.
  rng = np.random.default_rng(1)
  mde = stats.min_detectable_effect(1.0, 5)
  d = rng.normal(mde, 1.0, size=(40_000, 5))
  t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(5))
  assert np.mean(np.abs(t) > sps.t.ppf(0.975, 4)) == pytest.approx(0.80, abs=0.01)


def test_seeds_needed_matches_published_power_tables():
  # G*Power, paired t, two-sided α 0.05, power 0.8: dz 0.5 → 34 pairs (power 0.8078),
  # dz 0.8 → 15 (0.8213).
  assert stats.seeds_needed(0.5, 1.0) == 34 and stats.power(0.5, 1.0, 34) == pytest.approx(0.8078, abs=1e-4)
  assert stats.seeds_needed(-0.8, 1.0) == 15 and stats.power(0.8, 1.0, 15) == pytest.approx(0.8213, abs=1e-4)
  assert stats.power(0.5, 1.0, 33) < 0.8 and stats.power(0.8, 1.0, 14) < 0.8
  # LRN's 1.4 points with a paired sd of 1.0: 7 seeds at α 0.05; a smaller α needs more.
  assert stats.seeds_needed(1.4, 1.0) == 7 and stats.seeds_needed(1.4, 1.0, alpha=0.05 / 8) > 7
  assert stats.power(0.0, 1.0, 5) == pytest.approx(0.05, abs=1e-12)
  assert stats.seeds_needed(20.0, 1.0) == 2 and stats.power(20.0, 1.0, 2) > 0.9  # two can be enough
  with pytest.raises(ValueError, match="non-zero effect"):
    stats.seeds_needed(0.0, 1.0)


def test_tost_decides_on_both_sides_of_the_margin():
  # mean 0.2, sd 0.5, n 6: se = 0.5/√6; 90% interval 0.2 ± t(0.95; 5)·se = [−0.2113, 0.6113].
  se = 0.5 / math.sqrt(6)
  half = 2.015048373 * se
  inside = stats.tost(0.2, 0.5, 6, margin=0.7)
  assert inside.interval == pytest.approx((0.2 - half, 0.2 + half), abs=1e-8) and inside.equivalent
  assert inside.p == pytest.approx(max(sps.t.sf(0.9 / se, 5), sps.t.cdf(-0.5 / se, 5)), rel=1e-12)
  assert inside.p == pytest.approx(sps.t.cdf(-0.5 / se, 5), rel=1e-12)  # the upper side decides
  outside = stats.tost(0.2, 0.5, 6, margin=0.6)
  assert not outside.equivalent and outside.p > 0.05
  # The margin at the interval's edge: just outside fails, just inside passes.
  assert stats.tost(0.2, 0.5, 6, margin=0.2 + half + 1e-6).equivalent
  assert not stats.tost(0.2, 0.5, 6, margin=0.2 + half - 1e-6).equivalent
  # Mirror image: the lower side decides.
  assert stats.tost(-0.2, 0.5, 6, margin=0.7).p == pytest.approx(inside.p, rel=1e-12)
  assert not stats.tost(-0.2, 0.5, 6, margin=0.6).equivalent
  # No variation: inside the margin or not.
  assert stats.tost(0.3, 0.0, 4, 0.5).equivalent and not stats.tost(0.5, 0.0, 4, 0.5).equivalent
  with pytest.raises(ValueError, match="positive"):
    stats.tost(0.0, 1.0, 5, margin=0.0)


def test_did_not_train():
  assert stats.did_not_train(15.0, 10) and not stats.did_not_train(15.01, 10)       # chance 10 % + 5
  assert stats.did_not_train(9.1, 10) and stats.did_not_train(1.5, 1000)
  assert not stats.did_not_train(20.0, 10, train_loss=2.25)                        # ln 10 − 0.05 = 2.2526
  assert stats.did_not_train(20.0, 10, train_loss=2.26) and stats.did_not_train(20.0, 10, train_loss=4.2)
  assert not stats.did_not_train(9.0, None) and not stats.did_not_train(None, 10)


def test_compare_family_excludes_members_without_a_verdict():
  base = {s: 70.0 + s for s in range(5)}
  pairs = {
      "big": stats.paired({s: v - 3.0 + 0.5 * (s % 2) for s, v in base.items()}, base),
      "null": stats.paired({s: v + (0.4 if s % 2 else -0.4) for s, v in base.items()}, base),
      "dead": stats.paired({s: 10.0 for s in base}, base),
      "one": stats.paired({0: 71.0}, base)}
  out = stats.compare(pairs, {"dead": "did not train"}, margin=1.0)
  assert out["dead"].status == "did not train" and out["dead"].holm is None and out["dead"].interval is None
  assert out["one"].status == "too few seeds" and out["one"].holm is None
  assert {n for n, c in out.items() if c.holm} == {"big", "null"}
  big, null = out["big"], out["null"]
  assert big.status == "resolved" and big.holm.rank == 1 and big.holm.level == 0.025
  assert big.corrected == pytest.approx(stats.t_interval(big.pairs.mean, big.pairs.sd, 5, 0.025))
  assert big.mde == pytest.approx(stats.min_detectable_effect(big.pairs.sd, 5, 0.025))
  assert null.pairs.mean == pytest.approx(-0.08) and null.status == "equivalent" and null.equivalence.equivalent
  assert stats.compare(pairs, {"dead": "did not train"})["null"].status == "unresolved"


def test_boundaries_and_bad_arguments():
  # Holm rejects only below the level: p equal to alpha/(m − i + 1) is kept.
  assert not stats.holm({"z": 0.05})["z"].rejected
  h = stats.holm({"a": 0.05, "b": 0.001})
  assert h["b"].rejected and not h["a"].rejected and h["a"].p_adjusted == 0.05 and h["a"].level == 0.05
  h = stats.holm({"a": 0.0125, "b": 0.3, "c": 0.3, "d": 0.4})
  assert not h["a"].rejected and h["a"].p_adjusted == pytest.approx(0.05)
  assert h["a"].level == h["b"].level == h["d"].level == pytest.approx(0.0125)
  # A higher power needs a larger effect; the bracket grows past sd when it must.
  mde90 = stats.min_detectable_effect(1.0, 3, target=0.9)
  assert mde90 > stats.min_detectable_effect(1.0, 3) and stats.power(mde90, 1.0, 3) == pytest.approx(0.9, abs=1e-8)
  assert stats.min_detectable_effect(1.0, 2) > 8  # one degree of freedom: about 9.9 sd
  with pytest.raises(ValueError, match="target power"):
    stats.min_detectable_effect(1.0, 5, target=0.04)
  with pytest.raises(ValueError, match="more than 3 seeds"):
    stats.seeds_needed(0.1, 1.0, most=3)
  for bad in (lambda: stats.t_test_p(1.0, 1.0, 1), lambda: stats.power(1.0, 0.0, 5),
              lambda: stats.power(1.0, 1.0, 1), lambda: stats.tost(0.0, 1.0, 1, 1.0)):
    with pytest.raises(ValueError):
      bad()
  assert not stats.did_not_train(0.0, 1)
  # sd of the differences uses n − 1: (1, 3) has sd √2, not 1.
  assert stats.paired({0: 1.0, 1: 3.0}, {0: 0.0, 1: 0.0}).sd == pytest.approx(math.sqrt(2), abs=1e-12)


def test_compare_without_variation_and_not_comparable():
  base = {s: 70.0 for s in range(3)}
  pairs = {"flat": stats.paired({s: 71.0 for s in range(3)}, base),
           "moved": stats.paired({s: 60.0 + s for s in range(3)}, base)}
  out = stats.compare(pairs, {"moved": "not comparable"})
  assert out["flat"].p == 0.0 and out["flat"].corrected == (1.0, 1.0) and out["flat"].status == "resolved"
  assert out["flat"].mde is None and out["flat"].holm.level == 0.05
  assert out["moved"].status == "not comparable" and out["moved"].holm is None
  # No difference at all: the interval is the point 0, which does not exclude 0.
  same = stats.compare({"same": stats.paired(base, base)}, {})["same"]
  assert same.p == 1.0 and same.corrected == (0.0, 0.0) and not same.resolved and same.status == "unresolved"
