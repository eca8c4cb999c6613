"""experiments/campaign.py: the sweep commands it runs, its deadline, and what its bundle keeps."""

import os
import sys
import tarfile

from experiments import campaign


def test_sweep_commands_carry_data_seeds_and_overrides():
  argv = campaign.sweep_argv("alexnet", "/d", "/runs", 10, extra_args="epochs=1", extra_sets=("seed_x=1",))
  assert argv[:4] == [sys.executable, "-m", "experiments.sweep", "experiments/sweeps/alexnet_imagenette.py"]
  assert "--args=res=112,bf16,data=/d/imagenette,epochs=1" in argv and "--seeds=0,1,2" in argv
  assert "--set=input.pipeline=store" in argv and "--set=seed_x=1" in argv and "--parallel=10" in argv
  fig = campaign.sweep_argv("figure1", "/d", "/runs", 4)
  assert "--args=data=/d/cifar10" in fig and not any(a.startswith("--seeds") for a in fig)
  assert campaign.config_arg("leaderboard", "/d") == "configs/imagenette.py:bf16,data=/d/imagenette"


def test_deadline_stops_the_sweeps(tmp_path, monkeypatch):
  """A sweep still running at the deadline gets SIGTERM (a sleeping stand-in here) and the campaign goes on."""
  monkeypatch.setattr(campaign, "sweep_argv", lambda *a, **k: [sys.executable, "-c", "import time; time.sleep(60)"])
  import time
  t0 = time.time()
  campaign.run_sweeps(["figure1"], str(tmp_path), str(tmp_path), {}, deadline=time.time() + 0.5)
  assert time.time() - t0 < 30  # one 5 s poll, then SIGTERM ends the stand-in at once
  assert (tmp_path / "figure1.log").exists()


def test_bundle_leaves_out_checkpoints_events_and_large_files(tmp_path):
  root = tmp_path / "runs"
  (root / "sweep" / "m" / "checkpoints" / "5").mkdir(parents=True)
  (root / "sweep" / "m" / "checkpoints" / "5" / "state").write_bytes(b"x" * 10)
  (root / "sweep" / "m" / "metrics.jsonl").write_text("{}\n")
  (root / "sweep" / "m" / "events.out.tfevents.1").write_bytes(b"e")
  (root / "exports").mkdir()
  (root / "exports" / "big.npz").write_bytes(os.urandom(9 << 20))
  (root / "exports" / "conv1.npz").write_bytes(b"k")
  campaign.bundle(str(root), str(tmp_path / "b.tar.gz"))
  names = set(tarfile.open(tmp_path / "b.tar.gz").getnames())
  assert "runs/sweep/m/metrics.jsonl" in names and "runs/exports/conv1.npz" in names
  assert not any("checkpoints" in n or "tfevents" in n or "big.npz" in n for n in names)
