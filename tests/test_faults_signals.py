"""Fault tests: a second SIGTERM while the first one's save cannot finish, SIGTERM during an
evaluation, partial and damaged checkpoints, a full disk during a checkpoint write, and broken
images in a folder (the others are in test_faults.py; tests/fault_helpers.py has the tiny run and
the reference).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import uuid

import numpy as np
import pytest

from tests import fault_helpers as fh
from tests.conftest import write_image_folder
from tests.fault_helpers import reference  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(900)


def test_second_sigterm_exits_at_once_and_keeps_the_last_checkpoint(reference, tmp_path):
  """A second SIGTERM while the first one's save cannot finish: exit 143 at once, checkpoint 10 kept.

  Checkpoint 20's write is held back before its commit (tests/fault_runner.py), so after the
  first SIGTERM the run waits for it forever; only the second signal can end the process.
  """
  wd = tmp_path / "run"
  marker = tmp_path / "paused_at"
  p = fh.start(wd, log="1", fault=("pause", 20, marker))
  assert fh.wait_for(marker.exists, p), "checkpoint 20 was never written: no fault was injected"
  p.send_signal(signal.SIGTERM)
  log_path = fh.log_path(wd, "1")
  assert fh.wait_for(lambda: "finishing this step, saving a checkpoint" in log_path.read_text(), p, timeout=60), \
      "the first SIGTERM was not handled"
  assert p.poll() is None, "the run ended after one signal, though its checkpoint write never finishes"
  p.send_signal(signal.SIGTERM)
  rc, log = fh.finish(p, wd, "1", timeout=30)
  assert rc == 128 + signal.SIGTERM, log[-3000:]
  assert "Second signal 15: exiting now" in log
  assert fh.complete(wd) == [10] and fh.tmp_dirs(wd), "the held-back checkpoint 20 should be left uncommitted"
  fh.assert_same_state(reference, wd, 10)

  rc, log = fh.run(wd, log="2")
  assert rc == 0, log[-3000:]
  assert "Resuming from step 10" in log and fh.tmp_dirs(wd) == []
  fh.assert_same_state(reference, wd, fh.TOTAL)
  assert fh.history(wd) == fh.history(reference)


def test_sigterm_during_evaluation_saves_exits_and_resumes(reference, tmp_path):
  """SIGTERM while the mid-run evaluation (after step 16, one epoch) runs: it finishes, the run
  saves the next step's checkpoint and exits 0; the resumed run ends bit-identical."""
  wd = tmp_path / "run"
  marker = tmp_path / "evaluating"
  p = fh.start(wd, log="1", fault=("evalpause", 16, marker))
  assert fh.wait_for(marker.exists, p), "the evaluation after step 16 never began: no fault was injected"
  p.send_signal(signal.SIGTERM)
  rc, log = fh.finish(p, wd, "1", timeout=120)
  assert rc == 0, log[-3000:]
  assert "step 16 (epoch 1.00): eval top-1" in log, "the interrupted evaluation did not finish"
  assert "Saved checkpoint at step 17; exiting" in log
  assert fh.complete(wd) == [10, 17]
  assert [r["step"] for r in fh.rows(wd) if "eval/top1" in r] == [16]
  assert json.loads((wd / "summary.json").read_text())["done"] is False

  rc, log = fh.run(wd, log="2")
  assert rc == 0, log[-3000:]
  assert "Resuming from step 17" in log
  fh.assert_same_state(reference, wd, fh.TOTAL)
  assert fh.summary(wd) == fh.summary(reference)
  assert fh.history(wd) == fh.history(reference)


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
  rc, log = fh.run(wd)
  assert rc == 0, log[-3000:]
  assert "Checkpoint step 20 could not be read" in log and "Resuming from step 10" in log
  assert (wd / "checkpoints_unreadable" / "20").is_dir()
  assert fh.tmp_dirs(wd) == []
  fh.assert_same_state(reference, wd, fh.TOTAL)
  assert fh.history(wd) == fh.history(reference)


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
    rc, log = fh.run(wd, fault=() if mounted else ("enospc", 20))
    assert rc == 2, log[-3000:]
    assert "No space left on device" in log
    assert "latest complete checkpoint, step 10, is intact" in log
    assert fh.complete(wd) == [10]
    fh.assert_same_state(reference, wd, 10)
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
  rc, log = fh.run(wd, f"--config.dataset={root}", "--config.num_train_steps=4",
                 "--config.batch_size=8", "--config.eval_batch_size=8",
                 "--config.log_every_steps=2", "--config.checkpoint_every_steps=4",
                    tensorflow=True)  # an image folder is read through tf.data
  assert rc == 0, log[-3000:]
  assert "unreadable" in log
  for name in bad:
    assert name in log, f"{name} is not named in the log"
  summary = json.loads((wd / "summary.json").read_text())
  assert summary["done"] and summary["eval"]["num_examples"] == 8
