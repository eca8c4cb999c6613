"""`experiments.gpu_bench`: every part runs on the CPU at tiny sizes without TensorFlow, its record holds
at least 5 rounds per row with median, min and max, it renders, and the time budget skips parts cleanly."""

import json
import subprocess
import sys

import pytest

from experiments import bench_report, timing
from tests.conftest import REPO, subprocess_env

_BLOCK = "import sys; sys.modules.update(tensorflow=None, tensorflow_datasets=None); "


def _run(argv, timeout=900):
  code = _BLOCK + f"from experiments import gpu_bench; gpu_bench.main({argv!r}); " + (
      "print([m for m in sys.modules if m.startswith('tensorflow') and sys.modules[m] is not None])")
  r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                     timeout=timeout)
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.strip().splitlines()[-1] == "[]"  # no TensorFlow was needed
  return r


def _spread(stats):
  assert len(stats["round_s"]) >= timing.MIN_ROUNDS and len(stats["rate"]) == len(stats["round_s"])
  assert stats["min"] <= stats["median"] <= stats["max"] and stats["min"] > 0


@pytest.mark.slow
def test_tiny_gpu_bench_runs_every_part_and_records_every_round(tmp_path):
  path = tmp_path / "gpu.json"
  _run(["--tiny", "--models=cifar_cnn", "--compile_models=cifar_cnn", "--e2e_models=alexnet", f"--json={path}"])
  record = json.loads(path.read_text())
  m = record["machine"]
  assert {"cpu", "cores", "device_kind", "date", "versions", "command", "load_average_at_start"} <= set(m)
  assert {"python", "jax", "jaxlib", "flax", "optax", "torch"} <= set(m["versions"])
  assert record["tiny"] and not record["not_run"]
  (row,) = record["rows"]
  assert row["model"] == "cifar_cnn" and row["rounds"] >= timing.MIN_ROUNDS
  for side in ("jax", "torch"):
    _spread(row[side])
  assert len(row["ratio"]["per_round"]) == row["rounds"] and "at_least_1" in row["ratio"]
  assert row["gflop_per_step"] > 0 and row["xla_memory_bytes"]["argument"] > 0
  (comp,) = record["compile"]
  assert comp["cold"]["first_step_s"] > 0 and comp["warm"]["first_step_s"] > 0 and comp["cache_entries"] > 0
  (e2e,) = record["end_to_end"]
  assert e2e["model"] == "alexnet" and e2e["as"] == "alexnet_quick"
  for part in ("step_only", "end_to_end"):
    _spread(e2e[part])
  assert len(e2e["end_to_end"]["host_cores_busy"]) >= timing.MIN_ROUNDS
  assert {"cold", "warm"} <= set(e2e["store_read"])
  p = e2e["projection"]
  assert p["images_per_epoch"] == 1_281_167 and p["hours_at_slowest_round"] >= p["hours_at_median"] > 0
  assert p["disk_mb_s_needed"] > 0
  text = bench_report.render_gpu(record)
  assert "tiny CPU run" in text and "| cifar_cnn |" in text and "| alexnet (as alexnet_quick) |" in text
  assert "90 epochs" in text and "first step, empty cache" in text


def test_budget_skips_the_remaining_parts_and_records_them(tmp_path):
  path = tmp_path / "gpu.json"
  _run(["--tiny", "--budget_s=0", "--models=cifar_cnn", "--compile_models=", "--e2e_models=alexnet",
        f"--json={path}"], timeout=300)
  record = json.loads(path.read_text())
  assert record["rows"] == [] and record["end_to_end"] == []
  assert [(n["part"], n["model"]) for n in record["not_run"]] == [("rows", "cifar_cnn"), ("end_to_end", "alexnet")]
  assert "Not run (time budget): rows cifar_cnn; end_to_end alexnet." in bench_report.render_gpu(record)


def test_bad_arguments_exit_2_without_a_traceback():
  for argv in (["--models=nope"], ["--rounds=2"], ["--e2e_models=vgg16"]):
    r = subprocess.run([sys.executable, "-m", "experiments.gpu_bench", *argv], cwd=REPO, env=subprocess_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


def test_resume_keeps_the_parts_measured_and_runs_the_rest():
  from experiments import gpu_bench
  machine = {"device_kind": "H200", "date": "d1", "command": "c1"}
  old = {"kind": "gpu_bench", "machine": machine, "tiny": False, "rows": [{"model": "alexnet"}],
         "compile": [], "end_to_end": [{"model": "resnet50"}], "not_run": [{"part": "rows", "model": "vgg16"}]}
  new = {"kind": "gpu_bench", "machine": {**machine, "date": "d2", "command": "c2"}, "tiny": False, "settings": {},
         "rows": [], "compile": [], "end_to_end": [], "not_run": []}
  merged, done = gpu_bench.resume(old, new)
  assert done == {("rows", "alexnet"), ("end_to_end", "resnet50")}
  assert merged["rows"] == [{"model": "alexnet"}] and merged["not_run"] == []
  assert merged["machine"]["date"] == "d2" and [m["date"] for m in merged["earlier_runs"]] == ["d1"]
  with pytest.raises(SystemExit) as e:
    gpu_bench.resume({**old, "tiny": True}, new)
  assert e.value.code == 2


def test_versions_read_torch_from_its_version_file():
  """The record's torch versions, build tag included, come from torch's version.py (no import of torch)."""
  torch = pytest.importorskip("torch")
  torchvision = pytest.importorskip("torchvision")
  assert timing._version_file("torch") == torch.__version__
  assert timing._version_file("torchvision") == torchvision.__version__
  assert timing._version_file("json") is None and timing._version_file("no_such_module_here") is None
