"""`experiments.benchmark`, `timing`, `torch_twins`, `store_bench`, `bench_report`: the models are the
configs' models with PyTorch twins of the same size, rounds interleave, and a claim rests on every round."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax import models
from experiments import bench_report, benchmark, timing
from tests.conftest import REPO, subprocess_env


@pytest.mark.parametrize("name", ["alexnet", "alexnet_owt", "zfnet", "googlenet", "alexnet_quick", "cifar_cnn",
                                  "resnet18_quick"])
def test_torch_twins_are_the_configs_networks(name):
  import torch

  from experiments import torch_twins
  spec = benchmark.SPECS[name]
  batch, res = benchmark.row_sizes(name, type("A", (), {"batch": 2, "res": 0})(), on_gpu=True)
  config = benchmark.bench_config(name, batch=batch, res=res)
  classes = benchmark.num_classes(name)
  model = models.build_model(config.model, classes, jnp.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, res, res, 3))))
  n_jax = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"]))
  twin = torch_twins.model(spec.twin, config, classes, res)
  assert sum(p.numel() for p in twin.parameters()) == n_jax  # the same network in PyTorch
  out = twin(torch.zeros(2, 3, res, res))
  assert (out[0] if isinstance(out, tuple) else out).shape == (2, classes)


def test_bench_config_sets_the_same_update_rule_for_every_model():
  for name in benchmark.SPECS:
    opt = benchmark.bench_config(name).optimizer
    assert (opt.name, opt.momentum, opt.weight_decay, opt.nesterov, opt.decay_biases_and_norms) == (
        "sgd", 0.9, 5e-4, False, True)
  assert benchmark.bench_config("alexnet_quick", batch=8).batch_size == 64  # quick nets keep their batch


def test_rounds_interleave_and_alternate_which_peer_goes_first():
  calls = []
  peers = {"a": lambda n: calls.append(("a", n)), "b": lambda n: calls.append(("b", n))}
  times = timing.interleaved_rounds(peers, rounds=5, steps=3, warmup=1,
                                    before={"b": lambda: calls.append(("before b", 0))})
  assert [len(times["a"]), len(times["b"])] == [5, 5]
  order = [c[0] for c in calls if c[0] != "before b"]
  assert order == ["a", "b"] + ["a", "b", "b", "a"] * 2 + ["a", "b"]
  assert all(n == 3 for k, n in calls if k != "before b")
  assert sum(k == "before b" for k, _ in calls) == 6  # before each of b's turns, warm-up included


def test_a_ratio_claim_rests_on_its_slowest_round():
  r = timing.ratio_stats([1.0, 1.0, 1.0, 1.0, 1.0], [1.5, 1.2, 0.95, 1.3, 1.4])
  assert r["median"] == pytest.approx(1.3) and r["min"] == pytest.approx(0.95) and not r["at_least_1"]
  assert timing.ratio_stats([1.0] * 5, [1.0, 1.1, 1.2, 1.3, 1.4])["at_least_1"]
  s = timing.rate_stats([2.0, 1.0, 4.0], 8)
  assert s["rate"] == [4.0, 8.0, 2.0] and (s["median"], s["min"], s["max"]) == (4.0, 2.0, 8.0)


def _record(ratios):
  machine = {"date": "2026-01-01 00:00 UTC", "cpu": "CPU X", "cores": 2, "host_memory_bytes": 2**34,
             "device": "cpu:cpu", "device_kind": "cpu", "device_count": 1, "versions": {"jax": "1"},
             "command": "python -m experiments.benchmark", "load_average_at_start": [0.1, 0.2, 0.3]}
  row = {"model": "cifar_cnn", "res": 32, "batch": 64, "dtype": "float32", "steps_per_round": 1, "rounds": 5,
         "jax": timing.rate_stats([1.0] * 5, 64), "torch": timing.rate_stats(ratios, 64),
         "ratio": timing.ratio_stats([1.0] * 5, ratios)}
  return {"machine": machine, "torch_setup": "eager float32", "rows": [row]}


def test_render_step_says_at_least_1_only_when_every_round_is():
  good = bench_report.render_step(_record([1.1, 1.2, 1.05, 1.3, 1.2]))
  bad = bench_report.render_step(_record([1.1, 1.2, 0.98, 1.3, 1.2]))
  assert "CPU X" in good and "2026-01-01" in good and "`python -m experiments.benchmark`" in good
  assert "jax 1" in good and "0.10, 0.20, 0.30" in good
  assert good.splitlines()[-1].endswith("| yes |") and bad.splitlines()[-1].endswith("| no |")
  assert "**1.20** (1.05–1.30)" in good


@pytest.mark.parametrize("argv", [["--models=nope"], ["--rounds=3"], ["--steps=-1"]])
def test_bad_arguments_exit_2_without_a_traceback(argv):
  out = subprocess.run([sys.executable, "-m", "experiments.benchmark", *argv], cwd=REPO, env=subprocess_env(),
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 2 and "Traceback" not in out.stderr and "error:" in out.stderr


def test_store_read_record_has_cold_and_warm_passes(tmp_path):
  from experiments import store_bench
  path = tmp_path / "store_read.json"
  record = store_bench.main(["--images=64", "--size=32", "--batch=16", "--seconds=0",
                             f"--store_dir={tmp_path / 'stores'}", f"--json={path}"])
  assert json.loads(path.read_text()) == json.loads(json.dumps(record))
  read = record["read"]
  for kind in ("cold", "warm"):
    assert len(read[kind]["round_s"]) >= timing.MIN_ROUNDS
    assert {"median", "min", "max", "mb_s", "cores_busy", "page_cache"} <= set(read[kind])
  assert "evicted" in read["cold"]["page_cache"] and read["images_per_pass"] == 64
  if read["filesystem"] != "tmpfs":  # pages of a tmpfs file cannot be dropped
    assert max(read["cold"]["resident_at_start"]) < 0.5 < min(read["warm"]["resident_at_start"])
  text = bench_report.render_store_read(record)
  assert "| cold: evicted" in text and "| warm:" in text
