"""Fault tests: a run survives kill -9, preemption (also during evaluation, and a second signal), a NaN,
a full disk and broken images.

Every training here is a real `python main.py` process on a tiny config (30 steps of a
quarter-width AlexNet at 64 px on the embedded dataset), so signals, exit codes and the
files left on disk are the ones a user sees. The reference is one uninterrupted run; the
interrupted runs must end with bit-identical parameters, optimizer state and metrics.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import Callable

import numpy as np
import pytest

from tests.conftest import subprocess_env
from tests.conftest import write_image_folder

REPO = pathlib.Path(__file__).resolve().parents[1]
TOTAL = 30
TINY = [
    "--config=configs/alexnet.py:smoke",
    "--config.embedded_train_size=512", "--config.embedded_eval_size=128",
    f"--config.num_train_steps={TOTAL}", "--config.log_every_steps=5",
    "--config.checkpoint_every_steps=10", "--config.keep_checkpoints=3",
    "--config.model.width=0.25", "--config.batch_size=32", "--config.eval_batch_size=64",
]
RUN_TIMEOUT = 240  # seconds per process: generous for a loaded 2-core machine
# Timing-only values: everything else a run logs must match between runs bit for bit.
TIMING_KEYS = {"train/img_per_s", "steps_per_sec", "uptime", "wall_s", "img_per_s"}

pytestmark = pytest.mark.timeout(900)


def _log_path(workdir: pathlib.Path, log: str) -> pathlib.Path:
  """<workdir>.<log>.txt, or a file in the temp folder when the workdir's parent is not a folder."""
  parent = workdir.parent
  while not parent.is_dir() or os.path.ismount(parent):  # keep logs off a test's small disk
    parent = parent.parent
  return parent / f"{workdir.name}.{log}.txt"


def _start(workdir: pathlib.Path, *extra: str, log: str = "log", fault: tuple[str, ...] = ()
           ) -> subprocess.Popen:
  """Starts `main.py` in the background; stdout+stderr go to `_log_path`.

  `fault=("pause", step, marker)` or `("enospc", step)` injects a fault into the write of
  checkpoint `step` (tests/fault_runner.py says what each does).
  """
  out = open(_log_path(workdir, log), "w")
  runner = [str(REPO / "tests" / "fault_runner.py"), *map(str, fault)] if fault else ["main.py"]
  return subprocess.Popen([sys.executable, *runner, *TINY, f"--workdir={workdir}", *extra],
                          cwd=REPO, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen, workdir: pathlib.Path, log: str = "log",
            timeout: float = RUN_TIMEOUT) -> tuple[int, str]:
  try:
    rc = proc.wait(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    raise
  return rc, _log_path(workdir, log).read_text(errors="replace")


def _run(workdir: pathlib.Path, *extra: str, log: str = "log", fault: tuple[str, ...] = ()) -> tuple[int, str]:
  return _finish(_start(workdir, *extra, log=log, fault=fault), workdir, log)


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = RUN_TIMEOUT,
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


def _rows(workdir: pathlib.Path) -> list[dict]:
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


def _logged(workdir: pathlib.Path, step: int) -> bool:
  return any(r.get("step") == step and "train/loss" in r for r in _rows(workdir))


def _complete(workdir: pathlib.Path) -> list[int]:
  d = workdir / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def _tmp_dirs(workdir: pathlib.Path) -> list[str]:
  d = workdir / "checkpoints"
  return [p.name for p in d.iterdir() if "tmp" in p.name] if d.is_dir() else []


def _state(workdir: pathlib.Path, step: int) -> dict[str, np.ndarray]:
  """Every array of a checkpoint (params, batch stats, optimizer, plateau, pending metrics)."""
  import jax
  import orbax.checkpoint as ocp
  tree = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def _assert_same_state(a: pathlib.Path, b: pathlib.Path, step: int) -> None:
  sa, sb = _state(a, step), _state(b, step)
  assert sa.keys() == sb.keys()
  differ = [k for k in sa if not np.array_equal(sa[k], sb[k])]
  assert not differ, f"checkpoint {step} differs from the uninterrupted run in: {differ[:10]}"


def _history(workdir: pathlib.Path) -> list[dict]:
  """metrics.jsonl without timing values or timing-only rows."""
  out = []
  for r in _rows(workdir):
    kept = {k: v for k, v in r.items() if k not in TIMING_KEYS}
    if len(kept) > 1:
      out.append(kept)
  return out


def _summary(workdir: pathlib.Path) -> dict:
  s = json.loads((workdir / "summary.json").read_text())
  return {k: v for k, v in s.items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pathlib.Path:
  """One uninterrupted run: what every interrupted run must reproduce exactly."""
  wd = tmp_path_factory.mktemp("faults") / "reference"
  rc, log = _run(wd)
  assert rc == 0, log[-3000:]
  assert _complete(wd) == [10, 20, 30]
  return wd


def test_kill_preempt_nan_and_resume_end_bit_identical(reference, tmp_path):
  """One run, interrupted five ways in a row, ends exactly like the uninterrupted one."""
  wd = tmp_path / "run"

  # 1. kill -9 before the first checkpoint: the rerun starts over from step 0.
  p = _start(wd, log="1")
  assert _wait_for(lambda: _logged(wd, 5), p), "the run ended before step 5"
  p.kill()
  p.wait()
  assert _complete(wd) == []

  # 2. SIGTERM between checkpoints: the step finishes, a checkpoint is written, exit 0.
  p = _start(wd, log="2")
  assert _wait_for(lambda: _logged(wd, 15), p)
  p.send_signal(signal.SIGTERM)
  rc, log = _finish(p, wd, "2", timeout=120)
  assert rc == 0, log[-3000:]
  preempted = _complete(wd)[-1]
  assert 15 <= preempted < TOTAL, _complete(wd)
  assert f"Saved checkpoint at step {preempted}" in log
  assert json.loads((wd / "summary.json").read_text())["done"] is False

  # 3. A non-finite loss (a learning rate of 1e30: the first step's update is finite but huge,
  # so the next forward pass overflows): exit 2 naming the step and the kept checkpoint.
  rc, log = _run(wd, "--config.schedule.base_lr=1e30", log="3")
  assert rc == 2, log[-3000:]
  assert f"non-finite at step {preempted + 2}" in log
  assert f"last good checkpoint is step {preempted}" in log and "(kept)" in log
  assert _complete(wd)[-1] == preempted

  # 4. kill -9 in the middle of a checkpoint write: every file of the next checkpoint is in
  # Orbax's temporary folder, which is never renamed (tests/fault_runner.py holds it back).
  paused = (preempted // 10 + 1) * 10
  marker = tmp_path / "paused_at"
  p = _start(wd, log="4", fault=("pause", paused, marker))
  assert _wait_for(marker.exists, p), "the checkpoint write was never reached: no fault was injected"
  p.kill()
  p.wait()
  log = _log_path(wd, "4").read_text()
  assert "schedule.base_lr: 1e+30 → " in log  # the resumed run said what changed since run 3
  assert pathlib.Path(marker.read_text()).is_dir() and _tmp_dirs(wd), "no partial checkpoint was left"
  assert _complete(wd)[-1] == preempted < paused

  # 5. Resume to the end.
  rc, log = _run(wd, log="5")
  assert rc == 0, log[-3000:]
  assert _tmp_dirs(wd) == []  # a partial checkpoint is cleaned up, never restored
  _assert_same_state(reference, wd, TOTAL)
  assert _summary(wd) == _summary(reference)
  assert _history(wd) == _history(reference)


def test_second_sigterm_exits_at_once_and_keeps_the_last_checkpoint(reference, tmp_path):
  """A second SIGTERM while the first one's save cannot finish: exit 143 at once, checkpoint 10 kept.

  Checkpoint 20's write is held back before its commit (tests/fault_runner.py), so after the
  first SIGTERM the run waits for it forever; only the second signal can end the process.
  """
  wd = tmp_path / "run"
  marker = tmp_path / "paused_at"
  p = _start(wd, log="1", fault=("pause", 20, marker))
  assert _wait_for(marker.exists, p), "checkpoint 20 was never written: no fault was injected"
  p.send_signal(signal.SIGTERM)
  log_path = _log_path(wd, "1")
  assert _wait_for(lambda: "finishing this step, saving a checkpoint" in log_path.read_text(), p, timeout=60), \
      "the first SIGTERM was not handled"
  assert p.poll() is None, "the run ended after one signal, though its checkpoint write never finishes"
  p.send_signal(signal.SIGTERM)
  rc, log = _finish(p, wd, "1", timeout=30)
  assert rc == 128 + signal.SIGTERM, log[-3000:]
  assert "Second signal 15: exiting now" in log
  assert _complete(wd) == [10] and _tmp_dirs(wd), "the held-back checkpoint 20 should be left uncommitted"
  _assert_same_state(reference, wd, 10)

  rc, log = _run(wd, log="2")
  assert rc == 0, log[-3000:]
  assert "Resuming from step 10" in log and _tmp_dirs(wd) == []
  _assert_same_state(reference, wd, TOTAL)
  assert _history(wd) == _history(reference)


def test_sigterm_during_evaluation_saves_exits_and_resumes(reference, tmp_path):
  """SIGTERM while the mid-run evaluation (after step 16, one epoch) runs: it finishes, the run
  saves the next step's checkpoint and exits 0; the resumed run ends bit-identical."""
  wd = tmp_path / "run"
  marker = tmp_path / "evaluating"
  p = _start(wd, log="1", fault=("evalpause", 16, marker))
  assert _wait_for(marker.exists, p), "the evaluation after step 16 never began: no fault was injected"
  p.send_signal(signal.SIGTERM)
  rc, log = _finish(p, wd, "1", timeout=120)
  assert rc == 0, log[-3000:]
  assert "step 16 (epoch 1.00): eval top-1" in log, "the interrupted evaluation did not finish"
  assert "Saved checkpoint at step 17; exiting" in log
  assert _complete(wd) == [10, 17]
  assert [r["step"] for r in _rows(wd) if "eval/top1" in r] == [16]
  assert json.loads((wd / "summary.json").read_text())["done"] is False

  rc, log = _run(wd, log="2")
  assert rc == 0, log[-3000:]
  assert "Resuming from step 17" in log
  _assert_same_state(reference, wd, TOTAL)
  assert _summary(wd) == _summary(reference)
  assert _history(wd) == _history(reference)


def test_partial_and_damaged_checkpoints_are_skipped(reference, tmp_path):
  """A half-written step folder is never restored; a damaged complete one is moved aside.

  Checkpoint 30 becomes an Orbax temporary folder with truncated files (a write cut short)
  and checkpoint 20 loses its array data (disk damage after it was finalised): the run
  resumes from 10, keeps the damaged folder for inspection and ends bit-identical.
  """
  wd = tmp_path / "run"
  shutil.copytree(reference, wd, ignore=shutil.ignore_patterns(".lock", "summary.json"))
  shutil.rmtree(wd / "checkpoints" / "30")
  fake = wd / "checkpoints" / f"30.orbax-checkpoint-tmp-{uuid.uuid4().int % 10**9}"
  shutil.copytree(reference / "checkpoints" / "30", fake)
  for f in fake.rglob("*"):
    if f.is_file() and f.stat().st_size > 0:
      f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
  data_dirs = [d for d in (wd / "checkpoints" / "20" / "state").rglob("d") if d.is_dir()]
  assert data_dirs
  for d in data_dirs:
    shutil.rmtree(d)
  rc, log = _run(wd)
  assert rc == 0, log[-3000:]
  assert "Checkpoint step 20 could not be read" in log and "Resuming from step 10" in log
  assert (wd / "checkpoints_unreadable" / "20").is_dir()
  assert _tmp_dirs(wd) == []
  _assert_same_state(reference, wd, TOTAL)
  assert _history(wd) == _history(reference)


def test_killed_after_last_checkpoint_completes_the_summary(reference, tmp_path):
  """Killed between the final checkpoint and summary.json: the rerun writes the same summary."""
  wd = tmp_path / "run"
  shutil.copytree(reference, wd, ignore=shutil.ignore_patterns(".lock", "summary.json"))
  rc, log = _run(wd)
  assert rc == 0, log[-3000:]
  assert _summary(wd) == _summary(reference)


def test_incompatible_checkpoint_is_refused_and_config_kept(reference, tmp_path):
  wd = tmp_path / "run"
  shutil.copytree(reference, wd, ignore=shutil.ignore_patterns(".lock", "summary.json"))
  config_before = (wd / "config.json").read_text()
  rc, log = _run(wd, "--config.model.towers=1")
  assert rc == 2, log[-3000:]
  assert "does not fit this model/config; nothing was loaded" in log
  assert "conv2/kernel" in log and "shape differs" in log
  assert (wd / "config.json").read_text() == config_before  # the record of the trained config
  assert _complete(wd) == [10, 20, 30]


def test_other_model_family_and_width_list_mismatches(reference):
  """In-process: another family (names) and another width (shapes) are refused, listing both."""
  import jax
  from alexnet_jax import checkpoint, metrics, runtime
  from alexnet_jax.configs import alexnet, zfnet

  def target(cfg):
    cfg.unlock()
    cfg.embedded_train_size, cfg.embedded_eval_size, cfg.batch_size = 512, 128, 32
    rt = runtime.Runtime(cfg)
    return checkpoint.Checkpointed(jax.eval_shape(rt.init_state), metrics.TrainMetrics.empty())

  mgr = checkpoint.manager(str(reference), create=False, async_save=False)
  try:
    with pytest.raises(checkpoint.CheckpointMismatchError, match="nothing was loaded") as e:
      checkpoint.check_compatible(mgr, TOTAL, target(zfnet.get_config("smoke")))
    assert "state/params/" in str(e.value)
    wide = alexnet.get_config("smoke")
    with pytest.raises(checkpoint.CheckpointMismatchError, match="shape differs") as e:
      checkpoint.check_compatible(mgr, TOTAL, target(wide))  # width 0.5 vs the run's 0.25
    assert "conv1/kernel" in str(e.value)
  finally:
    mgr.close()


def _mount_tmpfs(path: pathlib.Path, size_bytes: int) -> bool:
  path.mkdir()
  try:
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)],
                       capture_output=True, timeout=30)
  except (OSError, subprocess.TimeoutExpired):
    return False
  return r.returncode == 0


def test_full_disk_during_checkpoint_keeps_previous(reference, tmp_path):
  """The disk fills while checkpoint 20 is written: a clear error, checkpoint 10 intact.

  With mount rights the workdir is a tmpfs too small for two checkpoints, so the write really
  runs out of space part-way; without them, Orbax's background writer fails with ENOSPC after
  writing checkpoint 20's files but before committing it (tests/fault_runner.py).
  """
  ckpt_bytes = sum(f.stat().st_size for f in (reference / "checkpoints" / "10").rglob("*") if f.is_file())
  mnt = tmp_path / "small_disk"
  mounted = not os.environ.get("FAULTS_NO_MOUNT") and _mount_tmpfs(mnt, int(ckpt_bytes * 1.6) + (512 << 10))
  try:
    wd = (mnt if mounted else tmp_path) / "run"
    rc, log = _run(wd, fault=() if mounted else ("enospc", 20))
    assert rc == 2, log[-3000:]
    assert "No space left on device" in log
    assert "latest complete checkpoint, step 10, is intact" in log
    assert _complete(wd) == [10]
    _assert_same_state(reference, wd, 10)
  finally:
    if mounted:
      subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def test_broken_images_train_and_are_named(tmp_path):
  """An image folder with corrupt files trains to the end and the log names each bad file."""
  root = tmp_path / "folder_data"
  rng = np.random.default_rng(0)
  colours = {"red": (200, 30, 30), "blue": (30, 30, 200)}

  def noisy(k, c):
    return np.clip(np.array(colours[c]) + rng.normal(0, 20, (72, 80, 3)), 0, 255).astype(np.uint8)

  write_image_folder(root, {"train": {"red": 12, "blue": 12}, "validation": {"red": 4, "blue": 4}},
                     names=lambda k: f"img{k}.jpg" if k % 2 else f"img{k}.png", pixels=noisy)
  bad = {"empty.jpg": b"", "truncated.jpg": (root / "train" / "red" / "img1.jpg").read_bytes()[:200],
         "text.png": b"this is not an image"}
  for name, data in bad.items():
    (root / "train" / "blue" / name).write_bytes(data)
  wd = tmp_path / "run"
  rc, log = _run(wd, f"--config.dataset={root}", "--config.num_train_steps=4",
                 "--config.batch_size=8", "--config.eval_batch_size=8",
                 "--config.log_every_steps=2", "--config.checkpoint_every_steps=4")
  assert rc == 0, log[-3000:]
  assert "unreadable" in log
  for name in bad:
    assert name in log, f"{name} is not named in the log"
  summary = json.loads((wd / "summary.json").read_text())
  assert summary["done"] and summary["eval"]["num_examples"] == 8
