"""The seed statistics at their boundaries: equalities, the smallest valid inputs, the exact messages,
where a small change would still pass test_stats.py. Values by hand or from scipy."""

from __future__ import annotations

import inspect
import math
import types

import pytest
from scipy import optimize
from scipy import stats as sps

from experiments import stats


def test_seeds_needed_counts_up_to_and_including_most():
  assert stats.seeds_needed(0.8, 1.0) == 15
  assert stats.seeds_needed(0.8, 1.0, most=15) == 15
  with pytest.raises(ValueError, match=r"^more than 14 seeds are needed for effect 0\.8 with sd 1\.0$"):
    stats.seeds_needed(0.8, 1.0, most=14)
  assert inspect.signature(stats.seeds_needed).parameters["most"].default == 10_000
  # Power exactly at the target is enough.
  exact = stats.power(0.8, 1.0, 15)
  assert stats.seeds_needed(0.8, 1.0, target=exact) == 15
  assert stats.seeds_needed(0.8, 1.0, target=math.nextafter(exact, 1.0)) == 16


def test_seeds_needed_refuses_no_spread_in_its_own_words():
  for effect, sd in [(1.0, 0.0), (1.0, -1.0), (0.0, 1.0)]:
    with pytest.raises(ValueError, match=rf"^seeds_needed needs a non-zero effect and sd > 0, got {effect}, {sd}$"):
      stats.seeds_needed(effect, sd)


def test_smallest_valid_inputs_and_exact_messages():
  assert stats.tost(0.0, 1.0, 2, 1.0).interval == pytest.approx(stats.t_interval(0.0, 1.0, 2, 0.1))
  with pytest.raises(ValueError, match=r"^an equivalence test needs at least 2 values, got 1$"):
    stats.tost(0.0, 1.0, 1, 1.0)
  with pytest.raises(ValueError, match=r"^the equivalence margin must be positive, got -1\.0$"):
    stats.tost(0.0, 1.0, 5, -1.0)
  with pytest.raises(ValueError, match=r"^a t interval needs at least 2 values, got 1$"):
    stats.t_interval(0.0, 1.0, 1)
  with pytest.raises(ValueError, match=r"^a t test needs at least 2 values, got 1$"):
    stats.t_test_p(0.0, 1.0, 1)
  assert stats.t_test_p(1.0, 1.0, 2) == pytest.approx(1 - 2 / math.pi * math.atan(math.sqrt(2)), abs=1e-12)  # df 1, t √2
  for n, sd in [(1, 1.0), (5, 0.0), (5, -1.0)]:
    with pytest.raises(ValueError, match=rf"^power needs n ≥ 2 and sd > 0, got n={n}, sd={sd}$"):
      stats.power(1.0, sd, n)
  # df 1, α 0.05: power at effect 0 is α, computed at n = 2.
  assert stats.power(0.0, 1.0, 2) == pytest.approx(0.05, abs=1e-12)
  for target in (0.05, 1.0, 1.5):
    with pytest.raises(ValueError, match=rf"^target power must lie between alpha and 1, got {target}$"):
      stats.min_detectable_effect(1.0, 5, target=target)
  assert stats.power(stats.min_detectable_effect(1.0, 5, target=0.06), 1.0, 5) == pytest.approx(0.06, abs=1e-9)


def test_t_test_p_is_scipys_paired_test():
  diffs = [0.5, -0.25, 1.5, 0.75]
  n, mean = len(diffs), sum(diffs) / len(diffs)
  sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
  ref = sps.ttest_1samp(diffs, 0.0)
  assert stats.t_test_p(mean, sd, n) == pytest.approx(ref.pvalue, rel=1e-12)
  assert stats.t_test_p(-mean, sd, n) == pytest.approx(ref.pvalue, rel=1e-12)
  assert stats.t_interval(mean, sd, n) == pytest.approx(tuple(ref.confidence_interval(0.95)), rel=1e-12)


def test_tost_without_spread_and_its_p_values():
  for mean, equivalent in [(-0.5, False), (-0.49, True), (0.49, True), (0.5, False)]:
    got = stats.tost(mean, 0.0, 4, 0.5)
    assert got == stats.Tost(0.0 if equivalent else 1.0, (mean, mean), equivalent)
  # sd 1, n 4, margin 1, mean 0.25: se 0.5; p_low = sf(2.5; 3), p_high = cdf(−1.5; 3).
  got = stats.tost(0.25, 1.0, 4, 1.0)
  assert got.p == pytest.approx(sps.t.cdf(-1.5, 3), rel=1e-12) and not got.equivalent
  assert got.interval == pytest.approx((0.25 - sps.t.ppf(0.95, 3) * 0.5, 0.25 + sps.t.ppf(0.95, 3) * 0.5), rel=1e-12)
  got = stats.tost(-0.25, 1.0, 4, 1.0, alpha=0.2)
  assert got.p == pytest.approx(sps.t.sf(1.5, 3), rel=1e-12) and got.equivalent
  assert got.interval == pytest.approx(stats.t_interval(-0.25, 1.0, 4, 0.4), rel=1e-12)


def test_did_not_train_at_its_boundaries():
  assert stats.did_not_train(54.9, 2) and not stats.did_not_train(55.1, 2)        # two classes: chance 50 %
  assert stats.did_not_train(60.0, 2, train_loss=math.log(2) - 0.05)                # the loss at the line counts
  assert stats.did_not_train(60.0, 10, train_loss=math.log(10) - 0.05)
  assert not stats.did_not_train(60.0, 10, train_loss=math.nextafter(math.log(10) - 0.05, 0.0))
  assert stats.did_not_train(20.0, 10, within_pts=10.0) and not stats.did_not_train(20.0, 10, within_pts=9.9)
  assert stats.did_not_train(60.0, 10, train_loss=2.0, loss_margin=0.31)
  assert not stats.did_not_train(60.0, 10, train_loss=2.0, loss_margin=0.30)
  assert not stats.did_not_train(0.0, 0) and not stats.did_not_train(None, 10, None)


def test_tost_claims_equivalence_only_below_alpha():
  p = stats.tost(0.25, 1.0, 4, 1.0).p
  assert not stats.tost(0.25, 1.0, 4, 1.0, alpha=p).equivalent
  assert stats.tost(0.25, 1.0, 4, 1.0, alpha=math.nextafter(p, 1.0)).equivalent


def test_compare_passes_its_levels_on_and_keeps_each_member_whole():
  base = {0: 70.0, 1: 71.0, 2: 72.0}
  pairs = {"two": stats.paired({0: 71.0, 1: 72.5}, base),               # n = 2 is tested
           "three": stats.paired({0: 70.2, 1: 70.9, 2: 72.3}, base),
           "one": stats.paired({2: 75.0}, base),
           "dead": stats.paired({0: 10.0, 1: 10.0, 2: 10.0}, base)}
  out = stats.compare(pairs, {"dead": "did not train"}, alpha=0.1, target=0.9, margin=1.0)
  assert out["dead"] == stats.Comparison("dead", pairs["dead"], "did not train")
  assert out["one"] == stats.Comparison("one", pairs["one"], "too few seeds")
  family = {n: stats.t_test_p(pairs[n].mean, pairs[n].sd, pairs[n].n) for n in ("two", "three")}
  corrections = stats.holm(family, 0.1)
  for name, status in [("two", "unresolved"), ("three", "equivalent")]:
    pr, h = pairs[name], corrections[name]
    want = stats.Comparison(
        name, pr, status, stats.t_interval(pr.mean, pr.sd, pr.n, 0.1), family[name], h,
        stats.t_interval(pr.mean, pr.sd, pr.n, h.level), stats.min_detectable_effect(pr.sd, pr.n, 0.05, 0.9),
        stats.tost(pr.mean, pr.sd, pr.n, 1.0, 0.1))
    assert out[name] == want
  # By hand: "two" has d = (1, 1.5), t = 1.25/0.25 = 5 on 1 degree of freedom.
  assert out["two"].p == pytest.approx(1 - 2 / math.pi * math.atan(5.0), rel=1e-12)
  assert corrections["two"].rank == 1 and corrections["two"].level == pytest.approx(0.05)


def _recording_brentq(monkeypatch):
  """Replaces the root finder `min_detectable_effect` calls with one that records its bracket and tolerance."""
  calls = []

  def brentq(f, a, b, **kw):
    calls.append((a, b, kw))
    return optimize.brentq(f, a, b, **kw)

  monkeypatch.setattr(stats, "optimize", types.SimpleNamespace(brentq=brentq))
  return calls


def test_min_detectable_effect_doubles_its_bracket_from_sd_and_solves_to_a_tolerance_in_sd(monkeypatch):
  calls = _recording_brentq(monkeypatch)
  # sd 2, n 5: power at effect 2 (one sd) is 0.40, at 4 it is 0.91; a target of 0.8 needs one doubling.
  mde = stats.min_detectable_effect(2.0, 5, target=0.8)
  assert calls == [(0.0, 4.0, {"xtol": 1e-10 * 2.0})]
  assert stats.power(mde, 2.0, 5) == pytest.approx(0.8, abs=1e-9)


def test_min_detectable_effect_keeps_a_bracket_whose_end_has_the_target_power(monkeypatch):
  calls = _recording_brentq(monkeypatch)
  target = stats.power(2.0, 2.0, 5)  # exactly the power at the first end, one sd
  assert stats.min_detectable_effect(2.0, 5, target=target) == 2.0
  assert [c[:2] for c in calls] == [(0.0, 2.0)]


def test_seeds_needed_tries_every_count_up_to_ten_thousand_by_default(monkeypatch):
  tried = []

  def power(effect, sd, n, alpha):
    tried.append(n)
    return 0.0

  monkeypatch.setattr(stats, "power", power)
  with pytest.raises(ValueError, match=r"^more than 10000 seeds are needed for effect 1\.0 with sd 1\.0$"):
    stats.seeds_needed(1.0, 1.0)
  assert tried == list(range(2, 10_001))
