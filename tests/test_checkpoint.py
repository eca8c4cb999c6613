"""Checkpoints (alexnet_jax/checkpoint.py): finalised steps, write errors, compatibility, damaged folders.

A tiny pytree stands in for the train state, so Orbax's real save and restore run in a moment;
the same paths on real runs (kill -9, full disk, another model) are in test_faults.py.
"""

import errno
import os
import shutil

import numpy as np
import pytest

from alexnet_jax import checkpoint


def _tree(scale: float = 1.0, **shapes: tuple[int, ...]) -> dict:
  shapes = shapes or {"w": (2, 3), "b": (3,)}
  return {"params": {k: np.full(s, scale, np.float32) for k, s in shapes.items()}}


def _saved(workdir, steps=(10, 20)) -> None:
  mgr = checkpoint.manager(str(workdir), async_save=False)
  try:
    for step in steps:
      checkpoint.save(mgr, step, _tree(float(step)), {"step": step, "model": "tiny"})
  finally:
    mgr.close()


def test_complete_steps_count_only_finalised_folders(tmp_path):
  ckpt = tmp_path / "checkpoints"
  for name in ("10", "20", "30.orbax-checkpoint-tmp-123", "notes"):
    (ckpt / name).mkdir(parents=True)
  (ckpt / "40").write_text("a file, not a checkpoint")
  assert checkpoint.complete_steps(str(tmp_path)) == [10, 20]
  assert checkpoint.complete_steps(str(ckpt)) == [10, 20]
  assert checkpoint.complete_steps(str(tmp_path / "elsewhere")) == []


def test_write_error_names_the_os_reason_and_the_checkpoint_kept(tmp_path):
  try:
    try:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as e:
      raise RuntimeError("the writer thread failed") from e
  except RuntimeError as wrapped:
    exc = wrapped
  (tmp_path / "checkpoints" / "10").mkdir(parents=True)
  msg = str(checkpoint.write_error(str(tmp_path / "checkpoints"), 20, exc))
  assert "checkpoint at step 20" in msg and "No space left on device" in msg
  assert "step 10, is intact" in msg
  assert isinstance(checkpoint.write_error("x", 1, exc), checkpoint.CheckpointWriteError)
  msg = str(checkpoint.write_error(str(tmp_path / "none" / "checkpoints"), None, ValueError("bad\nlast line")))
  assert "Could not write to the run's folder" in msg and "(last line)" in msg
  assert "starts from step 0" in msg


def test_leaf_paths_name_every_leaf_by_its_path():
  tree = checkpoint.Checkpointed(state={"params": {"conv1": {"kernel": 1, "bias": 2}}}, pending=(3,))
  assert set(checkpoint.leaf_paths(tree)) == {"state/params/conv1/kernel", "state/params/conv1/bias", "pending/0"}


def test_save_and_restore_latest_round_trip(tmp_path):
  _saved(tmp_path)
  mgr = checkpoint.manager(str(tmp_path), async_save=False, create=False)
  try:
    step, tree, meta = checkpoint.restore_latest(mgr, _tree())
    assert step == 20 and meta == {"step": 20, "model": "tiny"}
    np.testing.assert_array_equal(tree["params"]["w"], np.full((2, 3), 20.0))
    assert checkpoint.read_meta(mgr, 10)["step"] == 10
  finally:
    mgr.close()
  assert checkpoint.restore_latest(checkpoint.manager(str(tmp_path / "empty"), async_save=False),
                                   _tree()) == (None, None, {})


def test_a_checkpoint_of_another_tree_is_refused_listing_every_difference(tmp_path):
  _saved(tmp_path)
  mgr = checkpoint.manager(str(tmp_path), async_save=False, create=False)
  try:
    other = _tree(w=(2, 4), gamma=(3,))  # w's shape differs, b only saved, gamma only wanted
    with pytest.raises(checkpoint.CheckpointMismatchError) as e:
      checkpoint.restore_latest(mgr, other)
    msg = str(e.value)
    assert "nothing was loaded" in msg and "params/w (2, 3) vs (2, 4)" in msg
    assert "missing in checkpoint (1): params/gamma" in msg and "only in checkpoint (1): params/b" in msg
    with pytest.raises(checkpoint.CheckpointMismatchError, match=r"shape differs: params/b \(3,\) vs \(4,\)"):
      checkpoint.restore_latest(mgr, _tree(w=(2, 3), b=(4,)))  # the same names, one shape differs
    assert checkpoint.complete_steps(str(tmp_path)) == [10, 20]  # a mismatch is not damage: nothing moved
  finally:
    mgr.close()


# Orbax's reader leaves a callback for its closed event loop when the data is missing; harmless.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_damaged_checkpoint_is_moved_aside_and_the_one_before_restored(tmp_path):
  _saved(tmp_path)
  data = [d for d in (tmp_path / "checkpoints" / "20" / "state").rglob("d") if d.is_dir()]
  assert data
  for d in data:
    shutil.rmtree(d)
  mgr = checkpoint.manager(str(tmp_path), async_save=False, create=False)
  try:
    step, tree, _ = checkpoint.restore_latest(mgr, _tree())
  finally:
    mgr.close()
  assert step == 10 and float(tree["params"]["b"][0]) == 10.0
  assert (tmp_path / "checkpoints_unreadable" / "20").is_dir()
  assert checkpoint.complete_steps(str(tmp_path)) == [10]


def test_no_readable_checkpoint_left_is_a_clear_error(tmp_path):
  _saved(tmp_path, steps=(10,))
  for d in [d for d in (tmp_path / "checkpoints" / "10" / "state").rglob("d") if d.is_dir()]:
    shutil.rmtree(d)
  mgr = checkpoint.manager(str(tmp_path), async_save=False, create=False)
  try:
    with pytest.raises(checkpoint.CheckpointUnreadableError, match="nothing was deleted"):
      checkpoint.restore_latest(mgr, _tree())
  finally:
    mgr.close()
  assert (tmp_path / "checkpoints_unreadable" / "10").is_dir()
