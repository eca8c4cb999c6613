"""What the fault tests (test_faults.py, test_faults_signals.py) share: the tiny run, starting and
watching `main.py` processes, reading their checkpoints and metrics, and one uninterrupted
reference run per test run.

Every training here is a real `python main.py` process on a tiny config (30 steps of a
quarter-width AlexNet at 64 px on the embedded dataset), so signals, exit codes and the
files left on disk are the ones a user sees. The reference is one uninterrupted run; the
interrupted runs must end with bit-identical parameters, optimizer state and metrics.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from typing import Callable

import numpy as np
import pytest

from tests.conftest import subprocess_env

REPO = pathlib.Path(__file__).resolve().parents[1]
TOTAL = 30
# 128 training images at batch 8: an epoch is 16 steps, as with 512 at batch 32, so the evaluation
# after step 16 and the step numbers the tests assert hold; each step and evaluation does a quarter
# of the work.
TINY = [
    "--config=configs/alexnet.py:smoke",
    "--config.embedded_train_size=128", "--config.embedded_eval_size=32",
    f"--config.num_train_steps={TOTAL}", "--config.log_every_steps=5",
    "--config.checkpoint_every_steps=10", "--config.keep_checkpoints=3",
    "--config.model.width=0.25", "--config.batch_size=8", "--config.eval_batch_size=16",
]
# The prepared-store root of every run (the ALEXNET_JAX_DATA of the children): the reference run,
# which has TFDS, prepares the store there once; the runs without TensorFlow read it.
STORES: list[pathlib.Path] = []
RUN_TIMEOUT = 240  # seconds per process: generous for a loaded 2-core machine
# Timing-only values: everything else a run logs must match between runs bit for bit.
TIMING_KEYS = {"train/img_per_s", "steps_per_sec", "uptime", "wall_s", "img_per_s"}


def log_path(workdir: pathlib.Path, log: str) -> pathlib.Path:
  """<workdir>.<log>.txt, or a file in the temp folder when the workdir's parent is not a folder."""
  parent = workdir.parent
  while not parent.is_dir() or os.path.ismount(parent):  # keep logs off a test's small disk
    parent = parent.parent
  return parent / f"{workdir.name}.{log}.txt"


def start(workdir: pathlib.Path, *extra: str, log: str = "log", fault: tuple[str, ...] = (),
          tensorflow: bool = False) -> subprocess.Popen:
  """Starts `main.py` in the background; stdout+stderr go to `log_path`.

  `fault=("pause", step, marker)` or `("enospc", step)` injects a fault into the write of
  checkpoint `step` (tests/fault_runner.py says what each does). Training from the prepared
  store (in `STORES`, once the `reference` fixture has run) needs no TensorFlow, and importing
  it is a large part of a short run's start-up, so it is blocked unless `tensorflow` is true
  (TensorBoard's writer is then left out, which a run says in one warning line; metrics.jsonl
  and the checkpoints are the same either way).
  """
  out = open(log_path(workdir, log), "w")
  if fault or not tensorflow:
    runner = [str(REPO / "tests" / "fault_runner.py"), *([] if tensorflow else ["--no-tensorflow"]),
              *(map(str, fault) if fault else ["none"])]
  else:
    runner = ["main.py"]
  env = subprocess_env(**({"ALEXNET_JAX_DATA": str(STORES[-1])} if STORES else {}))
  return subprocess.Popen([sys.executable, *runner, *TINY, f"--workdir={workdir}", *extra],
                          cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, workdir: pathlib.Path, log: str = "log",
           timeout: float = RUN_TIMEOUT) -> tuple[int, str]:
  try:
    rc = proc.wait(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    raise
  return rc, log_path(workdir, log).read_text(errors="replace")


def run(workdir: pathlib.Path, *extra: str, log: str = "log", fault: tuple[str, ...] = (),
        tensorflow: bool = False) -> tuple[int, str]:
  return finish(start(workdir, *extra, log=log, fault=fault, tensorflow=tensorflow), workdir, log)


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = RUN_TIMEOUT,
             poll: float = 0.02) -> bool:
  """Polls `cond` until it holds (True) or the process ends first (False)."""
  end = time.monotonic() + timeout
  while time.monotonic() < end:
    if cond():
      return True
    if proc.poll() is not None:
      return cond()
    time.sleep(poll)
  raise TimeoutError("the training process did not reach the expected point in time")


def rows(workdir: pathlib.Path) -> list[dict]:
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return []
  out = []
  for line in path.read_text().splitlines():
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError:  # a line being written right now
      pass
  return out


def logged(workdir: pathlib.Path, step: int) -> bool:
  return any(r.get("step") == step and "train/loss" in r for r in rows(workdir))


def complete(workdir: pathlib.Path) -> list[int]:
  d = workdir / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def tmp_dirs(workdir: pathlib.Path) -> list[str]:
  d = workdir / "checkpoints"
  return [p.name for p in d.iterdir() if "tmp" in p.name] if d.is_dir() else []


def state(workdir: pathlib.Path, step: int) -> dict[str, np.ndarray]:
  """Every array of a checkpoint (params, batch stats, optimizer, plateau, pending metrics)."""
  import jax
  import orbax.checkpoint as ocp
  tree = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def assert_same_state(a: pathlib.Path, b: pathlib.Path, step: int) -> None:
  sa, sb = state(a, step), state(b, step)
  assert sa.keys() == sb.keys()
  differ = [k for k in sa if not np.array_equal(sa[k], sb[k])]
  assert not differ, f"checkpoint {step} differs from the uninterrupted run in: {differ[:10]}"


def history(workdir: pathlib.Path) -> list[dict]:
  """metrics.jsonl without timing values or timing-only rows."""
  out = []
  for r in rows(workdir):
    kept = {k: v for k, v in r.items() if k not in TIMING_KEYS}
    if len(kept) > 1:
      out.append(kept)
  return out


def summary(workdir: pathlib.Path) -> dict:
  s = json.loads((workdir / "summary.json").read_text())
  return {k: v for k, v in s.items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pathlib.Path:
  """One uninterrupted run (the user's command: `main.py` with TensorFlow and TensorBoard's writer),
  what every interrupted run must reproduce exactly. Tests copy it, never write into it.

  Made once per test run for both fault files: under pytest-xdist the first worker to ask runs
  it (holding a file lock) and the others wait and reuse it.
  """
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # the run's folder, above each worker's own
  wd = root / "faults_reference"
  STORES.append(root / "faults_stores")
  with open(root / "faults_reference.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    done = (wd / "summary.json").exists() and json.loads((wd / "summary.json").read_text()).get("done")
    if not done:
      shutil.rmtree(wd, ignore_errors=True)  # what a failed attempt left
      rc, log = run(wd, log="reference", tensorflow=True)
      assert rc == 0, log[-3000:]
      assert "TensorBoard's writer needs TensorFlow" not in log
  assert complete(wd) == [10, 20, 30]
  return wd
