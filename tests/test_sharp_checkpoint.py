"""Checkpoints, where a small change would still pass the broader tests: the manager's options,
the step a reader picks, every line of the mismatch and write-error messages, where a damaged
checkpoint is moved, and reading single arrays without the model.

Tiny trees and synchronous Orbax saves: the whole file runs in seconds.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from alexnet_jax import checkpoint


def _tree(value: float = 1.0, dtype=np.float32) -> dict:
  return {"params": {"w": np.full((2, 3), value, dtype), "b": np.full((3,), value, dtype)}}


def _save(workdir, steps, tree_of=_tree) -> None:
  mgr = checkpoint.manager(str(workdir), async_save=False)
  try:
    for step in steps:
      checkpoint.save(mgr, step, tree_of(float(step)), {"step": step})
  finally:
    mgr.close()


def _tmp_folder(workdir) -> str:
  """An unfinished Orbax write (its temporary folder name) inside <workdir>/checkpoints."""
  path = os.path.join(checkpoint.checkpoint_dir(str(workdir)), "30.orbax-checkpoint-tmp-1")
  os.makedirs(path)
  return path


# ----------------------------------------------------------------------------- folders and messages

def test_checkpoint_dir_is_absolute_and_complete_steps_accepts_a_trailing_separator(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert checkpoint.checkpoint_dir("run") == os.path.join(str(tmp_path), "run", "checkpoints")
  (tmp_path / "run" / "checkpoints" / "7").mkdir(parents=True)
  assert checkpoint.complete_steps("run") == [7]
  assert checkpoint.complete_steps(str(tmp_path / "run" / "checkpoints") + os.sep) == [7]


def test_reason_follows_the_cause_or_the_context_to_the_os_error():
  disk = OSError(errno.ENOSPC, "No space left on device")
  explicit = RuntimeError("writer failed")
  explicit.__cause__ = disk  # `raise ... from disk` outside the handler: no context
  assert checkpoint._reason(explicit) == "No space left on device"
  implicit = RuntimeError("writer failed")
  implicit.__context__ = OSError(errno.EACCES, "Permission denied")  # raised while handling it
  assert checkpoint._reason(implicit) == "Permission denied"
  assert checkpoint._reason(OSError("no errno here")) == "no errno here"  # no strerror: its text
  assert checkpoint._reason(ValueError("first\nsecond\nlast")) == "last"
  assert checkpoint._reason(KeyError()) == "KeyError"  # no text: its type


def test_write_error_messages_in_full(tmp_path):
  ckpt = tmp_path / "run" / "checkpoints"
  for step in (10, 30, 20):
    (ckpt / str(step)).mkdir(parents=True)
  err = checkpoint.write_error(str(ckpt), 40, OSError(errno.ENOSPC, "No space left on device"))
  assert type(err) is checkpoint.CheckpointWriteError
  assert str(err) == (
      f"Could not write the checkpoint at step 40 in {ckpt} (No space left on device); the latest complete "
      "checkpoint, step 30, is intact and the next run resumes from it. Free disk space or fix the folder's "
      "permissions, then run the same command again.")
  empty = tmp_path / "new" / "checkpoints"
  assert str(checkpoint.write_error(str(empty) + os.sep, None, ValueError("quota exceeded"))) == (
      f"Could not write to the run's folder {tmp_path / 'new'} (quota exceeded); no complete checkpoint exists "
      "yet, so the next run starts from step 0. Free disk space or fix the folder's permissions, then run the "
      "same command again.")


# ----------------------------------------------------------------------------- managers

def test_the_writing_manager_keeps_three_creates_its_folder_and_clears_unfinished_writes(tmp_path):
  mgr = checkpoint.manager(str(tmp_path / "run"))
  try:
    assert os.path.isdir(tmp_path / "run" / "checkpoints")
    options = mgr._options  # pylint: disable=protected-access
    assert (options.max_to_keep, options.create, options.enable_async_checkpointing, options.read_only,
            options.cleanup_tmp_directories) == (3, True, True, False, True)
    for step in (1, 2, 3, 4, 5):
      checkpoint.save(mgr, step, _tree(step), {"step": step})
    mgr.wait_until_finished()
  finally:
    mgr.close()
  assert checkpoint.complete_steps(str(tmp_path / "run")) == [3, 4, 5]
  leftover = _tmp_folder(tmp_path / "run")
  checkpoint.manager(str(tmp_path / "run"), keep=5, async_save=False).close()
  # Orbax clears unfinished writes on a background thread that only the first save waits for
  # (close() does not): give it a few seconds on a loaded machine.
  deadline = time.monotonic() + 20
  while os.path.exists(leftover) and time.monotonic() < deadline:
    time.sleep(0.05)
  assert not os.path.exists(leftover)


def test_a_read_only_manager_creates_and_clears_nothing(tmp_path):
  missing = checkpoint.open_read_only(str(tmp_path / "none"))
  try:
    assert missing.all_steps() == []
    options = missing._options  # pylint: disable=protected-access
    assert (options.create, options.enable_async_checkpointing, options.read_only,
            options.cleanup_tmp_directories) == (False, False, True, False)
  finally:
    missing.close()
  assert not (tmp_path / "none").exists()
  _save(tmp_path, (10,))
  leftover = _tmp_folder(tmp_path)
  reader = checkpoint.open_read_only(str(tmp_path))
  try:
    assert reader.all_steps() == [10]
    assert checkpoint.read_meta(reader, 10) == {"step": 10}
  finally:
    reader.close()
  assert os.path.isdir(leftover)


# Orbax's reader leaves a callback for its closed event loop when the data is missing; harmless.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_read_meta_reads_only_the_meta(tmp_path):
  _save(tmp_path, (10,))
  data = [d for d in (tmp_path / "checkpoints" / "10" / "state").rglob("d") if d.is_dir()]
  assert data
  for d in data:
    shutil.rmtree(d)  # the arrays are gone: only a reader of the whole state would notice
  mgr = checkpoint.open_read_only(str(tmp_path))
  try:
    assert checkpoint.read_meta(mgr, 10) == {"step": 10}
  finally:
    mgr.close()


def test_save_writes_a_step_older_than_the_latest(tmp_path):
  _save(tmp_path, (20, 10))
  assert checkpoint.complete_steps(str(tmp_path)) == [10, 20]


def test_chosen_step_is_the_latest_or_the_one_asked_for():
  mgr = SimpleNamespace(all_steps=lambda: [20, 30, 10])
  assert checkpoint.chosen_step(mgr, "run") == 30
  assert checkpoint.chosen_step(mgr, "run", 10) == 10
  got = checkpoint.chosen_step(mgr, "run", np.int64(20))
  assert got == 20 and type(got) is int
  with pytest.raises(checkpoint.NoCheckpointError) as e:
    checkpoint.chosen_step(mgr, "run", 15)
  assert str(e.value) == "No checkpoint for step 15 in 'run'; available: [10, 20, 30]."
  with pytest.raises(checkpoint.NoCheckpointError) as e:
    checkpoint.chosen_step(SimpleNamespace(all_steps=lambda: []), "run", 10)
  assert str(e.value) == f"No complete checkpoint in {checkpoint.checkpoint_dir('run')}."


# ----------------------------------------------------------------------------- compatibility and restore

def _mismatch(saved_tree, target) -> str:
  mgr = SimpleNamespace(item_metadata=lambda step: {"state": saved_tree}, directory="ckpts")
  with pytest.raises(checkpoint.CheckpointMismatchError) as e:
    checkpoint.check_compatible(mgr, 5, target)
  return str(e.value)


HEAD = "The checkpoint at step 5 in ckpts does not fit this model/config; nothing was loaded."
TAIL = "Use the config the checkpoint was trained with (see config.json in its workdir) or a fresh --workdir."


def test_each_kind_of_mismatch_alone_is_refused_in_full():
  a, b = np.zeros((2,)), np.zeros((3,))
  assert _mismatch({"x": a}, {"x": a, "y": a}) == f"{HEAD}\n  missing in checkpoint (1): y\n{TAIL}"
  assert _mismatch({"x": a, "y": a}, {"x": a}) == f"{HEAD}\n  only in checkpoint (1): y\n{TAIL}"
  assert _mismatch({"x": a}, {"x": b}) == f"{HEAD}\n  shape differs: x (2,) vs (3,)\n{TAIL}"
  assert _mismatch({"x": a}, {"x": 1.5}) == f"{HEAD}\n  shape differs: x (2,) vs ()\n{TAIL}"  # a scalar leaf


def test_a_mismatch_lists_the_first_twenty_of_each_kind():
  names = [f"k{i:02d}" for i in range(22)]
  a, b = np.zeros((1,)), np.zeros((2,))
  saved = {"s": {n: a for n in names}, "o": {n: a for n in names}}
  want = {"s": {n: b for n in names}, "m": {n: a for n in names}}
  lines = _mismatch(saved, want).split("\n")
  assert lines[0] == HEAD and lines[-1] == TAIL and len(lines) == 5
  assert lines[1] == "  missing in checkpoint (22): " + ", ".join(f"m/{n}" for n in names[:20])
  assert lines[2] == "  only in checkpoint (22): " + ", ".join(f"o/{n}" for n in names[:20])
  assert lines[3] == "  shape differs: " + ", ".join(f"s/{n} (1,) vs (2,)" for n in names[:20])


def test_a_matching_tree_passes_and_missing_metadata_is_unreadable():
  a = np.zeros((2,))
  ok = SimpleNamespace(item_metadata=lambda step: {"state": {"x": a, "n": 3.0}}, directory="ckpts")
  checkpoint.check_compatible(ok, 5, {"x": a, "n": 1.0})
  none = SimpleNamespace(item_metadata=lambda step: {"state": None}, directory="ckpts")
  with pytest.raises(checkpoint.CheckpointUnreadableError) as e:
    checkpoint.check_compatible(none, 5, {"x": a})
  assert str(e.value) == "Checkpoint step 5 has no readable 'state' metadata."


def test_restore_takes_the_targets_structure_and_dtypes_and_logs(tmp_path, caplog):
  caplog.set_level(logging.INFO)
  mgr = checkpoint.manager(str(tmp_path), async_save=False)
  try:
    for step in (3, 4):  # the step asked for, not the latest
      tree = checkpoint.Checkpointed(state=_tree(step - 1.0), pending=np.asarray(step + 2.0, np.float32))
      checkpoint.save(mgr, step, tree, {"step": step})
    target = checkpoint.Checkpointed(state=_tree(0.0, np.float16), pending=np.asarray(0.0, np.float32))
    restored, meta = checkpoint.restore(mgr, 3, target)
  finally:
    mgr.close()
  assert isinstance(restored, checkpoint.Checkpointed) and meta == {"step": 3}
  assert restored.state["params"]["w"].dtype == np.float16
  np.testing.assert_array_equal(restored.state["params"]["w"], np.full((2, 3), 2.0, np.float16))
  assert float(restored.pending) == 5.0
  assert f"Restored checkpoint step 3 from {mgr.directory}" in [r.getMessage() for r in caplog.records]


# ----------------------------------------------------------------------------- damaged checkpoints

def _failing_restore(monkeypatch, failing: dict):
  """checkpoint.restore raising failing[step] for those steps (the damage Orbax would report)."""
  real = checkpoint.restore

  def restore(mgr, step, target):
    if step in failing:
      raise failing[step]
    return real(mgr, step, target)
  monkeypatch.setattr(checkpoint, "restore", restore)


def test_damaged_steps_are_moved_to_free_names_and_logged(tmp_path, monkeypatch, caplog):
  caplog.set_level(logging.WARNING)
  _save(tmp_path, (10, 20, 30))
  aside = tmp_path / "checkpoints_unreadable"
  (aside / "30").mkdir(parents=True)  # moved by an earlier run
  (aside / "30.1").mkdir()
  wrapped = RuntimeError("tensorstore read failed")
  wrapped.__cause__ = OSError(errno.EIO, "Input/output error")
  _failing_restore(monkeypatch, {30: wrapped, 20: ValueError("bad chunk")})
  mgr = checkpoint.manager(str(tmp_path), async_save=False, create=False)
  try:
    step, tree, meta = checkpoint.restore_latest(mgr, _tree())
    assert mgr.all_steps() == [10]
  finally:
    mgr.close()
  assert (step, meta) == (10, {"step": 10}) and float(tree["params"]["w"][0, 0]) == 10.0
  assert sorted(os.listdir(aside)) == ["20", "30", "30.1", "30.2"]
  assert (aside / "30.2" / "state").is_dir() and (aside / "20" / "meta").is_dir()
  assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
      f"Checkpoint step 30 could not be read (Input/output error); moved it to {aside / '30.2'} and trying "
      "the one before.",
      f"Checkpoint step 20 could not be read (bad chunk); moved it to {aside / '20'} and trying the one before."]


def test_an_older_checkpoint_of_another_model_after_damage_is_unreadable_in_full(tmp_path, monkeypatch):
  _save(tmp_path, (10,), tree_of=lambda v: {"params": {"other": np.full((4,), v, np.float32)}})
  _save(tmp_path, (20,))
  _failing_restore(monkeypatch, {20: ValueError("bad chunk")})
  mgr = checkpoint.manager(str(tmp_path), async_save=False, create=False)
  try:
    with pytest.raises(checkpoint.CheckpointUnreadableError) as e:
      checkpoint.restore_latest(mgr, _tree())
  finally:
    mgr.close()
  moved = tmp_path / "checkpoints_unreadable" / "20"
  assert moved.is_dir() and checkpoint.complete_steps(str(tmp_path)) == [10]
  assert str(e.value) == (
      f"No readable checkpoint is left in {tmp_path / 'checkpoints'}: the damaged ones were moved to {moved} "
      "(nothing was deleted). Run the same command again to start over from step 0, or move a good "
      "checkpoint folder back.")


def test_every_step_damaged_lists_every_moved_folder(tmp_path, monkeypatch):
  _save(tmp_path, (10, 20))
  _failing_restore(monkeypatch, {10: ValueError("x"), 20: ValueError("y")})
  mgr = checkpoint.manager(str(tmp_path), async_save=False, create=False)
  try:
    with pytest.raises(checkpoint.CheckpointUnreadableError) as e:
      checkpoint.restore_latest(mgr, _tree())
  finally:
    mgr.close()
  aside = tmp_path / "checkpoints_unreadable"
  assert f"were moved to {aside / '20'}, {aside / '10'} (nothing was deleted)." in str(e.value)


# ----------------------------------------------------------------------------- single arrays

def _train_state(value: float) -> checkpoint.Checkpointed:
  params = {"conv1": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4) + value,
                      "bias": np.full((4,), value, np.float32)}}
  return checkpoint.Checkpointed(state={"params": params, "batch_stats": {"bn": {"mean": np.ones(2, np.float32)}}},
                                 pending=(np.float32(7.0),))


def test_array_shapes_and_restore_arrays_read_named_arrays_as_numpy(tmp_path):
  _save(tmp_path, (5, 6), tree_of=_train_state)
  leftover = _tmp_folder(tmp_path)
  assert checkpoint.array_shapes(str(tmp_path), 6) == {
      "params/conv1/kernel": (2, 3, 4), "params/conv1/bias": (4,), "batch_stats/bn/mean": (2,)}
  got = checkpoint.restore_arrays(str(tmp_path), 5, ["params/conv1/kernel", "batch_stats/bn/mean"])
  assert sorted(got) == ["batch_stats/bn/mean", "params/conv1/kernel"]
  assert type(got["params/conv1/kernel"]) is np.ndarray and got["params/conv1/kernel"].dtype == np.float32
  np.testing.assert_array_equal(got["params/conv1/kernel"], np.arange(24, dtype=np.float32).reshape(2, 3, 4) + 5)
  np.testing.assert_array_equal(got["batch_stats/bn/mean"], np.ones(2, np.float32))
  assert os.path.isdir(leftover)  # the reader clears nothing


def test_the_array_reader_is_read_only_and_creates_nothing(tmp_path, monkeypatch):
  reader = checkpoint._array_reader(str(tmp_path / "none"))
  try:
    options = reader._options  # pylint: disable=protected-access
    assert (options.create, options.read_only, options.enable_async_checkpointing) == (False, True, False)
    assert str(reader.directory) == checkpoint.checkpoint_dir(str(tmp_path / "none"))
  finally:
    reader.close()
  with pytest.raises(FileNotFoundError):
    checkpoint.array_shapes(str(tmp_path / "none"), 1)
  assert not (tmp_path / "none").exists()
  fake = SimpleNamespace(item_metadata=lambda step: {"state": None}, close=lambda: None)
  monkeypatch.setattr(checkpoint, "_array_reader", lambda workdir: fake)
  with pytest.raises(checkpoint.CheckpointUnreadableError) as e:
    checkpoint.array_shapes("run", 4)
  assert str(e.value) == "Checkpoint step 4 of 'run' has no readable 'state' metadata."


# ----------------------------------------------------------------------------- what Orbax is asked for

def test_a_writer_told_not_to_create_its_folder_creates_nothing(tmp_path):
  mgr = checkpoint.manager(str(tmp_path / "none"), async_save=False, create=False)
  try:
    assert mgr._options.create is False and mgr.all_steps() == []  # pylint: disable=protected-access
  finally:
    mgr.close()
  assert not (tmp_path / "none").exists()


def test_the_readers_ask_orbax_for_nothing_it_must_refuse_or_cannot_read(tmp_path, caplog):
  _save(tmp_path, (5,), tree_of=_train_state)
  caplog.set_level(logging.WARNING)
  checkpoint.open_read_only(str(tmp_path)).close()
  checkpoint._array_reader(str(tmp_path)).close()
  assert checkpoint.array_shapes(str(tmp_path), 5)["params/conv1/bias"] == (4,)
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert warnings and not [w for w in warnings if "create" in w or '"meta"' in w], warnings


def test_read_meta_and_restore_name_the_json_handler_themselves(tmp_path):
  _save(tmp_path, (10,))
  directory = checkpoint.checkpoint_dir(str(tmp_path))
  fresh = ocp.CheckpointManager(directory)  # a manager that knows no handler
  try:
    assert checkpoint.read_meta(fresh, 10) == {"step": 10}
  finally:
    fresh.close()
  state_only = ocp.CheckpointManager(directory)
  try:  # Orbax learns a handler from the args of a restore: here the state's only
    state_only.restore(10, args=ocp.args.Composite(state=ocp.args.StandardRestore(_tree())))
    tree, meta = checkpoint.restore(state_only, 10, _tree())
  finally:
    state_only.close()
  assert meta == {"step": 10} and float(tree["params"]["b"][0]) == 10.0


def test_move_aside_takes_the_first_free_name_and_reloads(tmp_path):
  ckpt, aside, reloads = tmp_path / "checkpoints", tmp_path / "checkpoints_unreadable", []
  mgr = SimpleNamespace(directory=ckpt, reload=lambda: reloads.append(True))
  for name in ("7", "7.1", "7.2"):
    (ckpt / "7" / "state").mkdir(parents=True)
    assert checkpoint._move_aside(mgr, 7, ValueError("bad")) == str(aside / name)
    assert (aside / name / "state").is_dir() and not (ckpt / "7").exists()
  assert len(reloads) == 3


def test_restore_arrays_reads_arrays_saved_on_a_device_this_host_lacks(tmp_path):
  kernel = jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3)
  _save(tmp_path, (1,), tree_of=lambda v: checkpoint.Checkpointed(state={"params": {"k": kernel}}, pending=()))
  shardings = tmp_path / "checkpoints" / "1" / "state" / "_sharding"
  entries = json.loads(shardings.read_text())
  assert entries
  shardings.write_text(json.dumps(  # as if written on a machine with a hundred GPUs
      {k: json.dumps({**json.loads(v), "device_str": "cuda:99"}) for k, v in entries.items()}))
  got = checkpoint.restore_arrays(str(tmp_path), 1, ["params/k"])
  assert type(got["params/k"]) is np.ndarray
  np.testing.assert_array_equal(got["params/k"], np.asarray(kernel))


def test_array_shapes_gives_a_leaf_without_a_shape_as_a_scalar(tmp_path):
  writer = ocp.CheckpointManager(checkpoint.checkpoint_dir(str(tmp_path)),
                                 options=ocp.CheckpointManagerOptions(enable_async_checkpointing=False),
                                 item_handlers={"state": ocp.PyTreeCheckpointHandler()})
  try:  # Orbax's own PyTree writer keeps strings (this module's writer refuses them)
    writer.save(1, args=ocp.args.Composite(state=ocp.args.PyTreeSave({"state": {"w": np.ones(2), "name": "net"}})))
    writer.wait_until_finished()
  finally:
    writer.close()
  assert checkpoint.array_shapes(str(tmp_path), 1) == {"name": (), "w": (2,)}
