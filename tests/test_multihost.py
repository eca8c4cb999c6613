"""Two-process data parallelism on one machine (127.0.0.1), as on a multi-host cluster.

Two `main.py` processes (one CPU device each, joined by jax.distributed over gloo) train a
small AlexNet on a tiny image folder for a few steps; a third, single-process run with
the same global batch is the reference. With augmentation and dropout off, the global
batch of step k holds the same images whichever way it is split between processes (the
folder pipeline gives process i the i-th stride of one global permutation), so the
losses must agree, and the Orbax checkpoint written jointly by both processes must load.

Preemption: SIGTERM to one of two processes makes both save the same step (JAX's
preemption sync point) and exit; resuming both ends bit-identical to the uninterrupted
two-process run above.

The single-process reference is the user's command (`main.py` with TensorFlow): it prepares the
folder's image store through TensorFlow's decoder. Every other process starts once that store is
ready and runs with TensorFlow blocked (tests/fault_runner.py --no-tensorflow), as where it is not
installed: training and evaluating from a prepared store need neither TensorFlow nor the seconds
of CPU its import takes in each process (TensorBoard's writer is left out; metrics.jsonl and the
checkpoints are the same either way).
"""

from __future__ import annotations

import json
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from alexnet_jax.data.store_layout import MANIFEST
from tests.conftest import subprocess_env
from tests.conftest import write_image_folder

REPO = pathlib.Path(__file__).resolve().parents[1]
RUNNER = REPO / "tests" / "fault_runner.py"
STEPS = 12
PAUSE_STEP = 2  # the preempted run's second process waits after this step for the signal
TIMEOUT_S = 600  # generous: CI machines with 2 shared cores can be slow


def _make_folder(root: pathlib.Path) -> None:
  """4 classes of flat-coloured 80×80 JPEGs with noise: train 16 per class, validation 4."""
  rng = np.random.default_rng(0)
  colours = {"class0": (200, 40, 40), "class1": (40, 200, 40), "class2": (40, 40, 200), "class3": (200, 200, 40)}

  def noisy(k, c):
    return np.clip(np.asarray(colours[c]) + rng.normal(0, 40, (80, 80, 3)), 0, 255).astype(np.uint8)

  write_image_folder(root, {split: dict.fromkeys(colours, n) for split, n in (("train", 16), ("validation", 4))},
                     pixels=noisy)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(data: pathlib.Path, workdir: pathlib.Path, steps: int = STEPS, *, tensorflow: bool = False,
             fault: tuple[str, ...] = ("none",)) -> list[str]:
  """main.py's command line; without TensorFlow (and with `fault`, tests/fault_runner.py) unless `tensorflow`."""
  runner = ["main.py"] if tensorflow else [str(RUNNER), "--no-tensorflow", *map(str, fault)]
  return [sys.executable, *runner,
          f"--config=configs/alexnet.py:smoke,data={data},aug=none,dropout=0.0,width=0.25,seed=3",
          f"--config.num_train_steps={steps}", "--config.batch_size=16", "--config.eval_batch_size=16",
          "--config.model.fc_dim=128", "--config.log_every_steps=2", f"--workdir={workdir}"]


def _two_processes(data: pathlib.Path, workdir: pathlib.Path, steps: int,
                   faults: dict[int, tuple[str, ...]] | None = None) -> dict[str, list[str]]:
  port = _free_port()
  return {f"{workdir.name}.process{pid}": _command(data, workdir, steps, fault=(faults or {}).get(pid, ("none",))) + [
      f"--coordinator=127.0.0.1:{port}", "--num_processes=2", f"--process_id={pid}"] for pid in range(2)}


def _stores(data: pathlib.Path) -> pathlib.Path:
  """The prepared-store root of this file's processes (their ALEXNET_JAX_DATA)."""
  return data.parent / "stores"


def _env(data: pathlib.Path) -> dict[str, str]:
  return subprocess_env(ALEXNET_JAX_DATA=str(_stores(data)))


def _start(commands: dict[str, list[str]], logs: pathlib.Path, data: pathlib.Path) -> dict[str, subprocess.Popen]:
  procs = {}
  for name, cmd in commands.items():
    with open(logs / f"{name}.log", "w") as log:  # the child keeps its own copy of the file
      procs[name] = subprocess.Popen(cmd, cwd=REPO, env=_env(data), stdout=log, stderr=subprocess.STDOUT)
  return procs


def _wait(procs: dict[str, subprocess.Popen], logs: pathlib.Path, until=None) -> None:
  """Waits for every process to end (or `until()` to hold); all must exit 0."""
  deadline = time.monotonic() + TIMEOUT_S
  try:
    while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
      # A process that dies leaves its peer waiting at a barrier: stop at the first failure.
      if any(p.poll() not in (None, 0) for p in procs.values()) or (until and until()):
        break
      time.sleep(0.05)
  finally:
    if not until:
      for p in procs.values():
        if p.poll() is None:
          p.kill()
          p.wait()
  if not until:
    for name, p in procs.items():
      assert p.returncode == 0, f"{name} failed (rc {p.returncode}):\n" + (logs / f"{name}.log").read_text()[-5000:]


def _train_losses(workdir: pathlib.Path) -> list[tuple[int, float]]:
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()]
  return [(r["step"], r["train/loss"]) for r in rows if "train/loss" in r]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp("multihost_data") / "images"
  _make_folder(root)
  return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data) -> dict[str, pathlib.Path]:
  tmp = tmp_path_factory.mktemp("multihost")
  multi, single = tmp / "two_processes", tmp / "one_process"
  # The single-process reference prepares the store (through TensorFlow); the two processes, which
  # read it without TensorFlow, start once it is complete and then run alongside the reference.
  procs = _start({"reference": _command(data, single, tensorflow=True)}, tmp, data)
  manifests = lambda: any(_stores(data).glob(f"*/{MANIFEST}"))  # noqa: E731
  try:
    _wait(procs, tmp, until=manifests)
    assert manifests(), "the reference run prepared no store:\n" + (tmp / "reference.log").read_text()[-5000:]
    commands = _two_processes(data, multi, STEPS)
    procs.update(_start(commands, tmp, data))
  finally:
    _wait(procs, tmp)  # kills what still runs when the above failed
  return {"multi": multi, "single": single, "data": data}


def test_both_processes_finish_and_write_one_checkpoint(runs):
  summary = json.loads((runs["multi"] / "summary.json").read_text())
  assert summary["done"] and summary["step"] == STEPS
  assert summary["devices"] == 2
  assert (runs["multi"] / "checkpoints" / str(STEPS)).is_dir()


def test_losses_equal_the_single_process_run(runs):
  multi, single = _train_losses(runs["multi"]), _train_losses(runs["single"])
  assert [s for s, _ in multi] == [s for s, _ in single] == list(range(2, STEPS + 1, 2))
  np.testing.assert_allclose([v for _, v in multi], [v for _, v in single], rtol=1e-4, atol=1e-5)
  ev_m = json.loads((runs["multi"] / "summary.json").read_text())["eval"]
  ev_s = json.loads((runs["single"] / "summary.json").read_text())["eval"]
  assert ev_m["num_examples"] == ev_s["num_examples"] == 16
  np.testing.assert_allclose(ev_m["loss"], ev_s["loss"], rtol=1e-4)


def test_two_process_checkpoint_restores_in_one_process(runs):
  # The jointly written checkpoint is complete: a single process evaluates it.
  proc = subprocess.run(_command(runs["data"], runs["multi"]) + ["--mode=eval"], cwd=REPO, env=_env(runs["data"]),
                        capture_output=True, text=True, timeout=TIMEOUT_S)
  assert proc.returncode == 0, proc.stderr[-5000:]
  assert f"Restored checkpoint step {STEPS}" in proc.stderr, proc.stderr[-3000:]


def _history(workdir: pathlib.Path) -> list[dict]:
  timing = {"train/img_per_s", "steps_per_sec", "uptime"}
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()]
  return [{k: v for k, v in r.items() if k not in timing} for r in rows if set(r) - timing - {"step"}]


def _state(workdir: pathlib.Path, step: int) -> dict[str, np.ndarray]:
  """Every array of a checkpoint written by several processes, read back in this one."""
  import jax
  import orbax.checkpoint as ocp
  path = workdir / "checkpoints" / str(step) / "state"
  checkpointer = ocp.StandardCheckpointer()
  metadata = checkpointer.metadata(path)
  here = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here),
                        getattr(metadata, "item_metadata", metadata))
  flat = jax.tree_util.tree_flatten_with_path(checkpointer.restore(path, target))[0]
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def test_sigterm_to_one_process_stops_both_at_the_same_step_and_resume_is_exact(runs, tmp_path):
  """The uninterrupted reference is the `runs` fixture's two-process run. Process 1 of the run that
  gets the signal waits after step PAUSE_STEP (tests/fault_runner.py) until the signal has been
  sent, so the signal cannot come too late however slow the machine."""
  stopped, marker, release = tmp_path / "stopped", tmp_path / "paused", tmp_path / "release"
  commands = _two_processes(runs["data"], stopped, STEPS,
                            faults={1: ("steppause", PAUSE_STEP, marker, release)})
  procs = _start(commands, tmp_path, runs["data"])
  _wait(procs, tmp_path, until=marker.exists)
  assert procs["stopped.process1"].poll() is None, "the run ended before the signal could be sent"
  procs["stopped.process1"].send_signal(signal.SIGTERM)  # the process that does not coordinate
  time.sleep(1.0)  # JAX's preemption service passes the notice on while the process waits
  release.touch()
  _wait(procs, tmp_path)

  saved = set()
  for pid in range(2):
    log = (tmp_path / f"stopped.process{pid}.log").read_text()
    found = re.findall(r"Saved checkpoint at step (\d+); exiting", log)
    assert len(found) == 1, f"process {pid}:\n" + log[-3000:]
    saved.add(int(found[0]))
  assert len(saved) == 1, f"the processes saved different steps: {saved}"
  step = saved.pop()
  assert PAUSE_STEP <= step < STEPS
  summary = json.loads((stopped / "summary.json").read_text())
  assert summary["step"] == step and not summary["done"]
  assert sorted(int(p.name) for p in (stopped / "checkpoints").iterdir() if p.name.isdigit()) == [step]

  _wait(_start(_two_processes(runs["data"], stopped, STEPS), tmp_path, runs["data"]), tmp_path)  # resume both
  whole = runs["multi"]
  assert json.loads((stopped / "summary.json").read_text())["done"]
  assert _history(stopped) == _history(whole)
  a, b = _state(stopped, STEPS), _state(whole, STEPS)
  assert a.keys() == b.keys()
  differ = [k for k in a if not np.array_equal(a[k], b[k])]
  assert not differ, f"the resumed run differs from the uninterrupted one in: {differ[:10]}"
