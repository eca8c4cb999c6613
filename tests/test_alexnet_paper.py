"""The paper's comparisons (experiments/sweeps/alexnet_paper.py), steps to a training-error threshold,
conv1's distance from its initialisation and its colour scores against random kernels, and the trial
records (experiments/alexnet_paper_trial.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alexnet_jax import config_files
from alexnet_jax.configs import validate
from alexnet_jax.inspect import kernels
from experiments import sweep
from experiments.sweeps import alexnet_paper

SWEEP = "experiments/sweeps/alexnet_paper.py"


def test_sweep_loads_and_every_member_is_a_valid_config():
  s = sweep.load_sweep(SWEEP)
  names = [m.name for m in s.members]
  assert names[:8] == ["baseline", "lrn_off", "pool_nonoverlap", "one_gpu", "pca_off", "dropout_off",
                       "remove_conv3", "aug_none"]
  assert s.base == "configs/alexnet.py:small" and s.baseline == "baseline"
  assert s.paper["lrn_off"]["top1"] == -1.4 and s.paper["one_gpu"]["top1"] == -1.7
  for job in sweep.expand(sweep.with_seeds(s, [3]), "runs", extra_args="data=embedded,res=112,bf16"):
    spec = next(a for a in job.argv if a.startswith("--config=")).removeprefix("--config=")
    c = config_files.load(spec)
    c.unlock()
    c.update_from_flattened_dict({a.split("=", 1)[0].removeprefix("--config."): int(a.split("=", 1)[1])
                                  for a in job.argv if a.startswith("--config.")})
    validate.check(c)
    assert c.seed == 3 and c.schedule.first_cut_step == 2000 and c.model.init_scheme == "paper"
    if job.member.name in alexnet_paper.SPEED_MEMBERS:
      assert c.num_train_steps == alexnet_paper.SPEED_STEPS
  one_gpu = config_files.load("configs/alexnet.py:small,one_gpu")
  assert (one_gpu.model.towers, one_gpu.model.half_kernels) == (1, True)


def test_seed_count_and_the_rate_grid():
  assert len(alexnet_paper.SEEDS) >= alexnet_paper.MIN_SEEDS >= 5
  grid = alexnet_paper.SPEED_GRID
  assert {act for act, _ in grid} == {"relu", "tanh"} and len(grid) == 2 * len(alexnet_paper.RATES)
  assert grid[("relu", 0.01)] == "baseline" and grid[("tanh", 0.02)] == "tanh_lr=0.02"
  members = {m.name: m for m in sweep.load_sweep(SWEEP).members}
  assert all(members[name].args.get("act", "relu") == act for (act, _), name in grid.items())


def test_seed_count_matches_the_paired_power_calculation():
  stats = pytest.importorskip("experiments.stats")
  # The sweep's docstring: 1.4 points at 80% power needs 9 seeds for a paired sd of 1.23, 6 for 0.87.
  assert stats.seeds_needed(1.4, 0.87 * math.sqrt(2)) == len(alexnet_paper.SEEDS) == 9
  assert stats.seeds_needed(1.4, 0.87) == 6


def test_steps_to_threshold_is_the_first_logged_step_at_or_below_the_error():
  rows = [{"step": 30, "train/top1": 0.52}, {"step": 10, "train/top1": 0.1}, {"step": 20, "train/top1": 0.49},
          {"step": 20, "eval/top1": 0.9}, {"step": 40, "train/top1": 0.4}]
  assert alexnet_paper.steps_to_threshold(rows, 0.5) == 30   # error 0.48 at step 30 (rows in any order)
  assert alexnet_paper.steps_to_threshold(rows, 0.51) == 20  # 0.51 at step 20: at or below counts
  assert alexnet_paper.steps_to_threshold(rows, 0.4) is None
  assert alexnet_paper.steps_to_threshold([], 0.5) is None


def test_best_rates_take_the_fewest_median_steps_and_count_failures_as_slowest():
  steps = {"baseline": [300, 320, 310], "relu_lr=0.02": [250, None, 260], "relu_lr=0.005": [600, 650, 700],
           "tanh_lr=0.005": [None, None, 900], "tanh_lr=0.01": [800, None, None], "tanh_lr=0.02": [1000, 1100, 900]}
  best = alexnet_paper.best_rates(steps)
  assert best["relu"] == (0.02, 260.0)
  assert best["tanh"] == (0.02, 1000.0)  # the other rates failed in 2 of 3 seeds: median infinite
  assert alexnet_paper.best_rates({"baseline": [5], "relu_lr=0.02": [5]})["relu"] == (0.01, 5.0)  # tie: smaller


def test_relative_change_per_tower():
  rng = np.random.default_rng(0)
  w0 = rng.normal(size=(5, 5, 3, 8))
  w = w0.copy()
  w[..., 4:] *= 1.5  # the second tower moves by half its norm, the first not at all
  np.testing.assert_allclose(kernels.relative_change(w, w0, 2), [0.0, 0.5], atol=1e-12)
  np.testing.assert_allclose(kernels.relative_change(w, w0, 1), [np.linalg.norm(w - w0) / np.linalg.norm(w0)])
  with pytest.raises(kernels.KernelsError):
    kernels.relative_change(w, w0[..., :4], 1)


def test_random_gaussian_kernels_score_like_random_and_grey_ones_do_not():
  rng = np.random.default_rng(1)
  same = kernels.versus_random(0.01 * rng.normal(size=(11, 11, 3, 96)), seed=2)
  assert abs(same["random_median"] - 2 / 3) < 0.03 and abs(same["median"] - same["random_median"]) < 0.05
  assert 0.4 < same["auc_random_above"] < 0.6 and same["p_value"] > 0.01
  grey = np.repeat(rng.normal(size=(11, 11, 1, 96)), 3, axis=2) + 0.2 * rng.normal(size=(11, 11, 3, 96))
  moved = kernels.versus_random(grey)
  assert moved["median"] < 0.2 and moved["auc_random_above"] > 0.95 and moved["p_value"] < 1e-6


def test_trial_records_and_table_from_a_trained_run(trained_run, tmp_path):
  from experiments import alexnet_paper_trial as trial
  out = tmp_path / "trial" / "runs" / "tiny"
  written = trial.write_records(str(trained_run.workdir), str(out), "python main.py --config=configs/alexnet.py:smoke")
  names = {p.split("/")[-1] for p in written}
  assert {"config.json", "metrics.jsonl", "summary.json", "machine.json", "conv1.json"} <= names
  assert not any("checkpoint" in n for n in names)
  conv1 = json.loads((out / "conv1.json").read_text())
  assert conv1["towers"] == 2 and conv1["steps"][0]["step"] == 0
  assert conv1["steps"][0]["relative_change"] == [0.0, 0.0]
  last = conv1["steps"][-1]
  assert last["step"] == int(trained_run.state.step) and min(last["relative_change"]) > 0
  np.testing.assert_allclose(
      kernels.relative_change(np.asarray(trained_run.state.params["conv1"]["kernel"]), trial.initial_conv1(
          str(trained_run.workdir)), 2), last["relative_change"], rtol=1e-5)
  machine = json.loads((out / "machine.json").read_text())
  assert {"host", "cpu", "date", "versions", "command"} <= set(machine)
  table = trial.render_trial(str(tmp_path / "trial"))
  assert "| tiny | on |" in table and "ln 10" in table


def test_trial_command_on_a_folder_without_a_run_is_one_line_and_exit_2(tmp_path, capsys):
  from experiments import alexnet_paper_trial as trial
  assert trial.main([f"--workdir={tmp_path}", f"--out={tmp_path / 'out'}"]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error:") and err.count("\n") == 1
