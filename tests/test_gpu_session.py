"""experiments/gpu_session.py: compile first, the crowd, the deadline, resume, status and the records archive.

Most runs use a fake entry point (a few lines that log steps and evaluations like main.py, save a
"checkpoint" on SIGTERM and resume from it), so the session's logic is checked in seconds; one
test runs the CI plan `tiny` through the real main.py.
"""

import json
import os
import sys
import tarfile
import textwrap

import pytest

from experiments import campaign
from experiments import gpu_session

FAKE_MAIN = textwrap.dedent("""
    import json, os, signal, sys, time
    args = dict(a.split("=", 1) if "=" in a else (a, "") for a in sys.argv[1:])
    if args.get("--mode") == "prepare":
        sys.exit(0)
    wd = args["--workdir"]
    os.makedirs(wd, exist_ok=True)
    with open(os.path.join(wd, "calls.txt"), "a") as f:
        f.write(" ".join(sys.argv[1:]) + "\\n")
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    with open(os.path.join(wd, "config.json"), "w") as f:
        json.dump({"config": args["--config"]}, f)
    print("W dispatch.py:236] Finished XLA compilation of jit(train_step) in 2.5 sec", flush=True)
    ckpt = os.path.join(wd, "checkpoints")
    start = int(open(ckpt).read()) if os.path.exists(ckpt) else 0
    total = int(args.get("--config.num_train_steps", "3"))
    every_step = args.get("--config.eval_every_epochs") == "1e-9"
    for step in range(start + 1, total + 1):
        time.sleep(float(os.environ.get("FAKE_STEP_S", "0.01")))
        with open(os.path.join(wd, "metrics.jsonl"), "a") as f:
            f.write(json.dumps({"step": step, "train/loss": 1.0}) + "\\n")
            if every_step:
                f.write(json.dumps({"step": step, "eval/top1": 0.1}) + "\\n")
        if stop:
            open(ckpt, "w").write(str(step))
            json.dump({"done": False, "step": step}, open(os.path.join(wd, "summary.json"), "w"))
            sys.exit(0)
    json.dump({"done": True, "eval": {"top1": 0.5}}, open(os.path.join(wd, "summary.json"), "w"))
""")


@pytest.fixture
def fake(tmp_path, monkeypatch):
  (tmp_path / "fake_main.py").write_text(FAKE_MAIN)
  (tmp_path / "fakesweep.py").write_text(textwrap.dedent("""
      from experiments.sweep import member
      BASE = "configs/alexnet.py:smoke"
      MEMBERS = [member("a"), member("b", {"lrn": False})]
  """))
  monkeypatch.setattr(gpu_session, "GRACE_S", 2.0)
  monkeypatch.setattr(gpu_session, "RESERVE_S", 1.0)

  def plan(steps):
    monkeypatch.setitem(gpu_session.PLANS, "fake", (gpu_session.SweepStep(
        str(tmp_path / "fakesweep.py"), "fake_study", (0, 1, 2), "", (f"num_train_steps={steps}",), parallel=2,
        member_major=True),))

  def main(*extra):
    return gpu_session.main(["--plan=fake", f"--root={tmp_path / 'root'}", f"--out={tmp_path / 'out'}",
                             f"--main={tmp_path / 'fake_main.py'}", f"--results={tmp_path / 'results'}", *extra])
  return tmp_path, plan, main


def _calls(root, run):
  path = root / "runs" / "fakesweep" / run / "calls.txt"
  return path.read_text().splitlines() if path.exists() else []


def test_session_compiles_first_runs_the_crowd_and_bundles(fake, monkeypatch):
  tmp, plan, main = fake
  plan(steps=5)
  # A run whose record is already in experiments/results/ is not run again.
  (tmp / "results" / "fake_study" / "runs" / "b-seed=2").mkdir(parents=True)
  (tmp / "results" / "fake_study" / "runs" / "b-seed=2" / "summary.json").write_text('{"done": true}')
  assert main("--budget_s=300") == 0
  root = tmp / "root"
  status = json.loads((root / "status.json").read_text())
  runs = status["steps"]["fakesweep"]["runs"]
  assert runs == {**{f"{m}-seed={s}": "done" for m in "ab" for s in range(3)}, "b-seed=2": "imported"}
  assert status["unfinished"] == {"fakesweep": []} and not status["deadline_hit"]
  assert _calls(root, "b-seed=2") == []
  # Member a's seeds share one program: it was compiled alone first, on a cold and then a warm cache.
  compiled = status["compile"]["fakesweep"]
  assert set(compiled) == {"a"} and set(compiled["a"]) == {"cold", "warm"}
  assert compiled["a"]["cold"]["compile_s"] == {"train_step": 2.5} and compiled["a"]["cold"]["first_eval_s"] >= 0
  warm_call = (root / "warm" / "fakesweep" / "a-cold" / "calls.txt").read_text()
  assert "--config.eval_every_epochs=1e-9" in warm_call and "--config.log_every_steps=1" in warm_call
  assert warm_call.count("--workdir=") == 1
  machine = json.loads((root / "runs" / "fakesweep" / "a-seed=0" / "machine.json").read_text())
  assert len(machine["processes"]) == 1 and machine["processes"][0]["exit"] == 0
  assert machine["compile_s"] == {"train_step": 2.5} and machine["command"].startswith("python ")
  names = set(tarfile.open(tmp / "out" / "records-fake.tar.gz").getnames())
  base = "experiments/results/fake_study/runs/"
  assert {base + "sweep.json", base + "a-seed=1/summary.json", base + "a-seed=1/machine.json",
          base + "a-seed=1/config.json", base + "a-seed=1/metrics.jsonl",
          "experiments/results/benchmarks/compile_cache_fake.json"} <= names
  assert not any("warm" in n or "calls.txt" in n or "checkpoints" in n for n in names)
  assert (tmp / "out" / "status-fake.json").exists()
  # Again: everything is done, nothing runs and nothing is compiled alone again.
  assert main("--budget_s=300") == 0
  assert len(_calls(root, "a-seed=0")) == 1
  assert len((root / "warm" / "fakesweep" / "a-cold" / "calls.txt").read_text().splitlines()) == 1


def test_deadline_stops_cleanly_and_the_next_call_resumes(fake, monkeypatch, capsys):
  tmp, plan, main = fake
  plan(steps=400)
  monkeypatch.setenv("FAKE_STEP_S", "0.05")
  assert main("--budget_s=14") == 0  # the runs need 20 s; the deadline stops them
  root = tmp / "root"
  status = json.loads((root / "status.json").read_text())
  assert status["deadline_hit"] and len(status["unfinished"]["fakesweep"]) == 6
  runs = status["steps"]["fakesweep"]["runs"]
  assert runs["a-seed=0"] == "partial" and runs["b-seed=2"] == "new"
  stopped_at = int((root / "runs" / "fakesweep" / "a-seed=0" / "checkpoints").read_text())
  assert 0 < stopped_at < 400
  capsys.readouterr()
  assert main("--status") == 0
  out = capsys.readouterr().out
  assert "0 of 6 runs done" in out and "a-seed=0: partial" in out
  monkeypatch.setenv("FAKE_STEP_S", "0.001")
  assert main("--budget_s=300") == 0
  assert len(_calls(root, "a-seed=0")) == 2  # resumed from its checkpoint, not restarted
  rows = [json.loads(r) for r in (root / "runs" / "fakesweep" / "a-seed=0" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == list(range(1, 401))
  assert json.loads((root / "status.json").read_text())["unfinished"] == {"fakesweep": []}
  machine = json.loads((root / "runs" / "fakesweep" / "a-seed=0" / "machine.json").read_text())
  assert len(machine["processes"]) == 2 and machine["wall_s"] == pytest.approx(
      sum(p["wall_s"] for p in machine["processes"]), abs=0.2)


def test_command_line_errors_are_one_line(capsys):
  assert gpu_session.main(["--plan=nope"]) == 2
  assert gpu_session.main(["--plan=tiny", "--budget_s=5"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 2 and all(e.startswith("error: ") for e in err)


def test_every_plan_names_existing_sweeps_and_a_benchmark_that_takes_its_flags():
  for name, steps in gpu_session.PLANS.items():
    for step in steps:
      if isinstance(step, gpu_session.SweepStep):
        assert os.path.isfile(os.path.join(gpu_session.REPO, step.sweep)), (name, step.sweep)
  bench = gpu_session.PLANS["speed"][0]
  assert bench.argv[:2] == ("-m", "experiments.gpu_bench")
  from experiments import gpu_bench
  args = gpu_bench.parse([a.format(budget_s=300, root="r") for a in bench.argv[2:]])
  assert args.budget_s == 300 and args.json == "r/" + dict(bench.outputs)["benchmarks/gpu_step.json"]


@pytest.mark.slow
def test_tiny_plan_through_the_real_trainer(tmp_path, monkeypatch):
  """The CI plan: a store prepared, the program compiled alone, two seeds side by side, the records.

  The runs train without TensorFlow, as on the GPU machine (docs/GPU.md); only the store's
  preparation from the embedded set (TFDS) has it. Each run is spared importing it: seconds of CPU.
  """
  block = tmp_path / "block"
  for name in ("tensorflow", "tensorflow_datasets"):
    (block / name).mkdir(parents=True)
    (block / name / "__init__.py").write_text(f'raise ImportError("no {name} here")')
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(block), os.environ.get("PYTHONPATH")])))
  real_prepare = gpu_session.Session.prepare

  def prepare_with_tensorflow(self, job):
    path = [p for p in self.env["PYTHONPATH"].split(os.pathsep) if p != str(block)]
    blocked, self.env = self.env, {**self.env, "PYTHONPATH": os.pathsep.join(path)}
    try:
      real_prepare(self, job)
    finally:
      self.env = blocked

  monkeypatch.setattr(gpu_session.Session, "prepare", prepare_with_tensorflow)
  assert gpu_session.main(["--plan=tiny", f"--root={tmp_path / 'root'}", f"--out={tmp_path / 'out'}",
                           "--budget_s=600"]) == 0
  status = json.loads((tmp_path / "root" / "status.json").read_text())
  assert status["steps"]["tiny"]["runs"] == {"baseline-seed=0": "done", "baseline-seed=1": "done"}
  assert "train_step" in status["compile"]["tiny"]["baseline"]["cold"]["compile_s"]
  dest = tmp_path / "results"
  files = campaign.import_records(str(tmp_path / "out" / "records-tiny.tar.gz"), str(dest))
  run = dest / "tiny" / "runs" / "baseline-seed=1"
  assert {"config.json", "metrics.jsonl", "summary.json", "machine.json"} <= {p.name for p in run.iterdir()}
  assert json.loads((run / "summary.json").read_text())["done"] and len(files) == 10
  # The second seed loaded the programs the first run compiled alone.
  machine = json.loads((run / "machine.json").read_text())
  assert machine["compile_s"].get("train_step", 0) < status["compile"]["tiny"]["baseline"]["cold"]["compile_s"][
      "train_step"] and sys.executable not in json.dumps(machine)
  assert "TensorBoard's writer needs TensorFlow" in (tmp_path / "root" / "runs" / "tiny" / "logs" /
                                                     "baseline-seed=1.log").read_text()


def test_leaderboard_table_from_run_records(tmp_path):
  from experiments.sweeps import imagenette_leaderboard as lb
  for epochs, seed, top1, wall, done in [(5, 0, 0.86, 100.0, True), (5, 1, 0.88, 110.0, True),
                                         (5, 2, 0.10, 20.0, False), (20, 0, 0.91, 400.0, True)]:
    run = tmp_path / f"epochs={epochs}-seed={seed}"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"done": done, "eval": {"top1": top1}}))
    (run / "machine.json").write_text(json.dumps({"gpu": "NVIDIA H200", "wall_s": wall}))
  rows = lb.leaderboard_rows(str(tmp_path))
  assert [(r["epochs"], r["runs"]) for r in rows] == [(5, 2), (20, 1)]  # the stopped run does not count
  assert rows[0]["top1_mean"] == pytest.approx(87.0) and rows[0]["top1_sd"] == pytest.approx(1.41421, abs=1e-4)
  text = lb.render_leaderboard(str(tmp_path))
  assert "| 5 | 2 (only 2 of 5) | 87.00 ± 1.41 | 87.43 | 105 s (100-110) | NVIDIA H200 |" in text
  assert "| 20 | 1 (only 1 of 5) | 91.00 (one run) | 91.57 |" in text


def test_packages_brought_for_the_gpu_machine_import_without_tensorflow(tmp_path):
  from experiments import gpu_pack
  dest = tmp_path / "pydeps"
  assert gpu_pack.pack_packages(str(dest)) == list(gpu_pack.PACKAGES)
  assert not list(dest.rglob("__pycache__"))
  block = tmp_path / "block" / "tensorflow"
  block.mkdir(parents=True)
  (block / "__init__.py").write_text('raise ImportError("no TensorFlow here")')
  code = ("import clu, ml_collections; from clu import metric_writers, periodic_actions; "
          "assert clu.__file__.startswith(%r) and metric_writers.summary_writer.SummaryWriter is None" % str(dest))
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(dest), str(tmp_path / "block")])}
  import subprocess
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]


def test_sigterm_stops_the_runs_and_still_bundles(fake, monkeypatch):
  import signal
  import threading
  tmp, plan, main = fake
  plan(steps=400)
  monkeypatch.setenv("FAKE_STEP_S", "0.05")
  before = signal.getsignal(signal.SIGTERM)
  timer = threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGTERM))
  timer.start()
  try:
    assert main("--budget_s=300") == 0
  finally:
    timer.cancel()
  status = json.loads((tmp / "root" / "status.json").read_text())
  assert status["deadline_hit"] and status["elapsed_s"] < 60
  assert status["steps"]["fakesweep"]["runs"]["a-seed=0"] == "partial"
  assert (tmp / "out" / "records-fake.tar.gz").exists()
  assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_images_are_packed_from_a_folder_or_an_archive_and_unpacked_once(tmp_path):
  import zipfile

  from PIL import Image

  from experiments import gpu_pack
  src = tmp_path / "imagenette"
  for split, cls in (("train", "n01"), ("train", "n02"), ("val", "n01")):
    (src / split / cls).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (128, 128), (200, 30, 30)).save(src / split / cls / "a.JPEG", quality=95)
  with tarfile.open(tmp_path / "imagenette.tar", "w") as tar:
    tar.add(src, arcname="imagenette")
  for source in (src, tmp_path / "imagenette.tar"):
    data = tmp_path / f"data-{source.suffix or 'folder'}"
    assert gpu_pack.pack_images(str(source), 60, str(data / "imagenette.zip")) == {"train": 2, "val": 1}
    assert sorted(zipfile.ZipFile(data / "imagenette.zip").namelist()) == [
        "train/n01/a.JPEG", "train/n02/a.JPEG", "val/n01/a.JPEG"]
    folder = gpu_pack.unpack(str(data))
    with Image.open(os.path.join(folder, "val", "n01", "a.JPEG")) as im:
      assert im.format == "JPEG" and im.size == (128, 128)
    os.remove(os.path.join(folder, "val", "n01", "a.JPEG"))
    assert gpu_pack.unpack(str(data)) == folder and not os.path.exists(os.path.join(folder, "val", "n01", "a.JPEG"))
  assert gpu_pack.unpack(str(tmp_path / "empty")) is None
  with pytest.raises(gpu_pack.PackError, match="no such file"):
    gpu_pack.pack_images(str(tmp_path / "missing"), 70, str(tmp_path / "x.zip"))
