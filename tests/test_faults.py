"""Fault tests: a run survives kill -9, preemption, a NaN and a kill during a checkpoint write, one
killed before its summary completes it, and a checkpoint of another model is refused. Signals
during a save or an evaluation, damaged checkpoints, a full disk and broken images are in
test_faults_signals.py; tests/fault_helpers.py has the tiny run and the uninterrupted reference.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import signal

import pytest

from tests import fault_helpers as fh
from tests.fault_helpers import reference  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(900)


def test_kill_preempt_nan_and_resume_end_bit_identical(reference, tmp_path):
  """One run, interrupted five ways in a row, ends exactly like the uninterrupted one.

  The preempted stage and the last one run with TensorFlow (TensorBoard's writer), as a user's
  run does; the others without it (tests/fault_helpers.py).
  """
  wd = tmp_path / "run"

  # 1. kill -9 before the first checkpoint: the rerun starts over from step 0. The run is held
  # after step 6 (tests/fault_runner.py), so the kill lands before checkpoint 10 however slow
  # the machine.
  held, release = tmp_path / "held_1", tmp_path / "release_1"
  p = fh.start(wd, log="1", fault=("steppause", 6, held, release))
  assert fh.wait_for(lambda: held.exists() and fh.logged(wd, 5), p), "the run ended before step 6"
  p.kill()
  p.wait()
  assert fh.complete(wd) == []

  # 2. SIGTERM between checkpoints: the step finishes, a checkpoint is written, exit 0. The run
  # is held after step 18 until the signal is handled, so it lands there on any machine: between
  # logged steps, so the checkpoint carries the pending train metrics of steps 16-18.
  held, release = tmp_path / "held_2", tmp_path / "release_2"
  p = fh.start(wd, log="2", tensorflow=True, fault=("steppause", 18, held, release))
  assert fh.wait_for(held.exists, p), "the run ended before step 18"
  p.send_signal(signal.SIGTERM)
  assert fh.wait_for(lambda: "finishing this step, saving a checkpoint" in fh.log_path(wd, "2").read_text(), p,
                     timeout=60), "the SIGTERM was not handled"
  release.touch()
  rc, log = fh.finish(p, wd, "2", timeout=120)
  assert rc == 0, log[-3000:]
  preempted = fh.complete(wd)[-1]
  assert preempted == 18, fh.complete(wd)
  assert f"Saved checkpoint at step {preempted}" in log
  assert json.loads((wd / "summary.json").read_text())["done"] is False

  # 3. A non-finite loss (a learning rate of 1e30: the first step's update is finite but huge,
  # so the next forward pass overflows): exit 2 naming the step and the kept checkpoint.
  rc, log = fh.run(wd, "--config.schedule.base_lr=1e30", log="3")
  assert rc == 2, log[-3000:]
  assert f"non-finite at step {preempted + 2}" in log
  assert f"last good checkpoint is step {preempted}" in log and "(kept)" in log
  assert fh.complete(wd)[-1] == preempted

  # 4. kill -9 in the middle of a checkpoint write: every file of the next checkpoint is in
  # Orbax's temporary folder, which is never renamed (tests/fault_runner.py holds it back).
  paused = (preempted // 10 + 1) * 10
  marker = tmp_path / "paused_at"
  p = fh.start(wd, log="4", fault=("pause", paused, marker))
  assert fh.wait_for(marker.exists, p), "the checkpoint write was never reached: no fault was injected"
  p.kill()
  p.wait()
  log = fh.log_path(wd, "4").read_text()
  assert "schedule.base_lr: 1e+30 → " in log  # the resumed run said what changed since run 3
  assert pathlib.Path(marker.read_text()).is_dir() and fh.tmp_dirs(wd), "no partial checkpoint was left"
  assert fh.complete(wd)[-1] == preempted < paused

  # 5. Resume to the end.
  rc, log = fh.run(wd, log="5", tensorflow=True)
  assert rc == 0, log[-3000:]
  assert fh.tmp_dirs(wd) == []  # a partial checkpoint is cleaned up, never restored
  fh.assert_same_state(reference, wd, fh.TOTAL)
  assert fh.summary(wd) == fh.summary(reference)
  assert fh.history(wd) == fh.history(reference)


def test_killed_after_last_checkpoint_completes_the_summary(reference, tmp_path):
  """Killed between the final checkpoint and summary.json: the rerun writes the same summary."""
  wd = tmp_path / "run"
  shutil.copytree(reference, wd, ignore=shutil.ignore_patterns(".lock", "summary.json"))
  rc, log = fh.run(wd)
  assert rc == 0, log[-3000:]
  assert fh.summary(wd) == fh.summary(reference)


def test_incompatible_checkpoint_is_refused_and_config_kept(reference, tmp_path):
  wd = tmp_path / "run"
  shutil.copytree(reference, wd, ignore=shutil.ignore_patterns(".lock", "summary.json"))
  config_before = (wd / "config.json").read_text()
  rc, log = fh.run(wd, "--config.model.towers=1")
  assert rc == 2, log[-3000:]
  assert "does not fit this model/config; nothing was loaded" in log
  assert "conv2/kernel" in log and "shape differs" in log
  assert (wd / "config.json").read_text() == config_before  # the record of the trained config
  assert fh.complete(wd) == [10, 20, 30]


def test_other_model_family_and_width_list_mismatches(reference):
  """In-process: another family (names) and another width (shapes) are refused, listing both."""
  import jax
  from alexnet_jax import checkpoint, metrics, runtime
  from alexnet_jax.configs import alexnet, zfnet
  from alexnet_jax.data import store_layout

  def target(cfg):
    cfg.unlock()
    cfg.embedded_train_size, cfg.embedded_eval_size, cfg.batch_size = 128, 32, 8  # as fh.TINY
    # The model's shapes need only the class count: no dataset is read (building the tf.data
    # stream for its info took most of this test's time).
    info = store_layout.DatasetInfo(name="embedded", num_classes=10, num_train=128, num_eval=32, class_names=())
    rt = runtime.Runtime(cfg, info=info)
    return checkpoint.Checkpointed(jax.eval_shape(rt.init_state), metrics.TrainMetrics.empty())

  mgr = checkpoint.manager(str(reference), create=False, async_save=False)
  try:
    with pytest.raises(checkpoint.CheckpointMismatchError, match="nothing was loaded") as e:
      checkpoint.check_compatible(mgr, fh.TOTAL, target(zfnet.get_config("smoke")))
    assert "state/params/" in str(e.value)
    wide = alexnet.get_config("smoke")
    with pytest.raises(checkpoint.CheckpointMismatchError, match="shape differs") as e:
      checkpoint.check_compatible(mgr, fh.TOTAL, target(wide))  # width 0.5 vs the run's 0.25
    assert "conv1/kernel" in str(e.value)
  finally:
    mgr.close()
