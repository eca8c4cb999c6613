"""Orbax checkpoints of a run: save, restore, and refuse what does not fit.

Layout: <workdir>/checkpoints/<step>/{state, meta}. `state` is the whole TrainState
pytree (params, batch statistics, optimizer state with its step and learning rate,
plateau state) plus the pending train-metric accumulator; `meta` is JSON (step, epoch,
whether the run finished, the model name). Orbax writes each step into a temporary
folder and renames it when complete, so a checkpoint cut short by a kill is never
picked up on restore. A complete checkpoint damaged later is moved to
<workdir>/checkpoints_unreadable/ and the one before it restored (`restore_latest`).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import flax
import jax
import orbax.checkpoint as ocp
from absl import logging

from alexnet_jax.errors import UserError
from alexnet_jax.workdir import WorkdirError


class CheckpointMismatchError(UserError):
  """The checkpoint was written by another model or config; nothing was loaded."""


class NoCheckpointError(UserError, FileNotFoundError):
  """Evaluation or prediction found no checkpoint to load (none yet, or not the step asked for)."""


class CheckpointUnreadableError(WorkdirError):
  """A checkpoint's files are missing or damaged (it fits the model, but cannot be read)."""


class CheckpointWriteError(WorkdirError):
  """A checkpoint could not be written (disk full, permissions); earlier ones are intact."""


@flax.struct.dataclass
class Checkpointed:
  """Everything a checkpoint's 'state' item holds (the JSON meta is separate)."""
  state: Any    # the TrainState
  pending: Any  # train metrics accumulated since the last log


def complete_steps(workdir_or_ckpt_dir: str) -> list[int]:
  """Steps whose checkpoint folder was finalised (Orbax's temporary folders are not counted)."""
  d = workdir_or_ckpt_dir
  if os.path.basename(os.path.normpath(d)) != "checkpoints":
    d = checkpoint_dir(d)
  if not os.path.isdir(d):
    return []
  return sorted(int(n) for n in os.listdir(d) if n.isdigit() and os.path.isdir(os.path.join(d, n)))


def _reason(exc: BaseException) -> str:
  """The OS error behind `exc` (Orbax wraps errors of its writer threads), else its last line."""
  err: BaseException | None = exc
  while err is not None:
    if isinstance(err, OSError) and err.strerror:
      return err.strerror
    err = err.__cause__ or err.__context__
  text = str(exc).strip()
  return text.splitlines()[-1] if text else type(exc).__name__


def write_error(directory: str, step: int | None, exc: BaseException) -> CheckpointWriteError:
  """A message for a failed write: what failed, why, and which checkpoint the next run resumes from.

  `directory` is the checkpoint folder; `step` the checkpoint being written (None: another
  file of the run, e.g. metrics on a full disk).
  """
  done = complete_steps(str(directory))
  kept = (f"the latest complete checkpoint, step {done[-1]}, is intact and the next run resumes from it"
          if done else "no complete checkpoint exists yet, so the next run starts from step 0")
  what = (f"Could not write the checkpoint at step {step} in {directory}" if step is not None
          else f"Could not write to the run's folder {os.path.dirname(os.path.normpath(str(directory)))}")
  return CheckpointWriteError(
      f"{what} ({_reason(exc)}); {kept}. Free disk space or fix the folder's permissions, then run "
      f"the same command again.")


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, *, keep: int = 3, async_save: bool = True, create: bool = True,
            read_only: bool = False) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=create, enable_async_checkpointing=async_save,
      cleanup_tmp_directories=not read_only, read_only=read_only)
  # Naming the handlers (not only the items) lets a fresh process read a checkpoint's metadata
  # before restoring it, which `check_compatible` needs on every resume.
  handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


def open_read_only(workdir: str) -> ocp.CheckpointManager:
  """A read-only manager over <workdir>/checkpoints, for evaluation and prediction."""
  return manager(workdir, async_save=False, create=False, read_only=True)


def chosen_step(mgr: ocp.CheckpointManager, workdir: str, step: int | None = None) -> int:
  """`step` if the run has a complete checkpoint for it, else the latest (step None); one-line errors."""
  steps = mgr.all_steps()
  if not steps:
    raise NoCheckpointError(f"No complete checkpoint in {checkpoint_dir(workdir)}.")
  step = max(steps) if step is None else int(step)
  if step not in steps:
    raise NoCheckpointError(f"No checkpoint for step {step} in {workdir!r}; available: {sorted(steps)}.")
  return step


def save(mgr: ocp.CheckpointManager, step: int, tree: Any, meta: dict[str, Any], *, force: bool = True) -> None:
  mgr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)),
           force=force)


def leaf_paths(tree: Any) -> dict[str, Any]:
  """{'state/params/conv1/kernel': leaf, ...} for any pytree (dataclasses included)."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(p, simple=True, separator="/"): leaf for p, leaf in leaves}


def check_compatible(mgr: ocp.CheckpointManager, step: int, target: Any) -> None:
  """Compares the saved tree's names and shapes with `target`; raises listing every mismatch."""
  saved = mgr.item_metadata(step)["state"]
  if saved is None:
    raise CheckpointUnreadableError(f"Checkpoint step {step} has no readable 'state' metadata.")
  saved_p = {k: tuple(getattr(v, "shape", ())) for k, v in leaf_paths(saved).items()}
  want_p = {k: tuple(getattr(v, "shape", ())) for k, v in leaf_paths(target).items()}
  missing = sorted(set(want_p) - set(saved_p))
  extra = sorted(set(saved_p) - set(want_p))
  shape = sorted(k for k in set(want_p) & set(saved_p) if want_p[k] != saved_p[k])
  if missing or extra or shape:
    lines = [f"The checkpoint at step {step} in {mgr.directory} does not fit this model/config; nothing was loaded."]
    if missing:
      lines.append(f"  missing in checkpoint ({len(missing)}): " + ", ".join(missing[:20]))
    if extra:
      lines.append(f"  only in checkpoint ({len(extra)}): " + ", ".join(extra[:20]))
    if shape:
      lines.append("  shape differs: " + ", ".join(f"{k} {saved_p[k]} vs {want_p[k]}" for k in shape[:20]))
    lines.append("Use the config the checkpoint was trained with (see config.json in its workdir) or a fresh --workdir.")
    raise CheckpointMismatchError("\n".join(lines))


def restore(mgr: ocp.CheckpointManager, step: int, target: Any) -> tuple[Any, dict[str, Any]]:
  """Restores `step` into the structure, shardings and dtypes of `target` (abstract or concrete)."""
  check_compatible(mgr, step, target)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  out = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                    meta=ocp.args.JsonRestore()))
  logging.info("Restored checkpoint step %d from %s", step, mgr.directory)
  return out["state"], dict(out["meta"] or {})


def read_meta(mgr: ocp.CheckpointManager, step: int) -> dict[str, Any]:
  out = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
  return dict(out["meta"] or {})


def restore_latest(mgr: ocp.CheckpointManager, target: Any) -> tuple[int | None, Any, dict[str, Any]]:
  """Restores the newest readable checkpoint: (step, tree, meta), or (None, None, {}) if there is none.

  A checkpoint that fits the model but cannot be read (files lost or damaged after it was
  finalised) is moved to <workdir>/checkpoints_unreadable/<step> and the next older one is
  tried, so a damaged folder never stops a run that has an intact earlier checkpoint. A
  checkpoint of another model or config is not damage: that raises at once.
  """
  moved: list[str] = []
  for step in sorted(mgr.all_steps(), reverse=True):
    try:
      tree, meta = restore(mgr, step, target)
    except CheckpointMismatchError:
      if moved:  # an older checkpoint does not fit either: report the whole picture
        raise CheckpointUnreadableError(_unreadable_message(mgr, moved)) from None
      raise
    except Exception as e:  # noqa: BLE001 - Orbax and TensorStore raise many types for damaged data
      moved.append(_move_aside(mgr, step, e))
      continue
    return step, tree, meta
  if moved:
    raise CheckpointUnreadableError(_unreadable_message(mgr, moved))
  return None, None, {}


def _move_aside(mgr: ocp.CheckpointManager, step: int, exc: BaseException) -> str:
  src = os.path.join(str(mgr.directory), str(step))
  dest_root = os.path.join(os.path.dirname(os.path.normpath(str(mgr.directory))), "checkpoints_unreadable")
  os.makedirs(dest_root, exist_ok=True)
  dest = os.path.join(dest_root, str(step))
  n = 1
  while os.path.exists(dest):
    dest, n = os.path.join(dest_root, f"{step}.{n}"), n + 1
  shutil.move(src, dest)
  mgr.reload()
  logging.warning("Checkpoint step %d could not be read (%s); moved it to %s and trying the one before.",
                  step, _reason(exc), dest)
  return dest


def _unreadable_message(mgr: ocp.CheckpointManager, moved: list[str]) -> str:
  return (f"No readable checkpoint is left in {mgr.directory}: the damaged ones were moved to "
          f"{', '.join(moved)} (nothing was deleted). Run the same command again to start over from step 0, "
          f"or move a good checkpoint folder back.")


def _array_reader(workdir: str) -> ocp.CheckpointManager:
  """A read-only manager that can restore a chosen subset of a checkpoint's arrays (no model needed)."""
  options = ocp.CheckpointManagerOptions(create=False, read_only=True, enable_async_checkpointing=False)
  handlers = {"state": ocp.PyTreeCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


def array_shapes(workdir: str, step: int) -> dict[str, tuple[int, ...]]:
  """{'params/conv1/kernel': shape, ...}: every array of the train state saved at `step`."""
  mgr = _array_reader(workdir)
  try:
    saved = mgr.item_metadata(step)["state"]
  finally:
    mgr.close()
  if saved is None:
    raise CheckpointUnreadableError(f"Checkpoint step {step} of {workdir!r} has no readable 'state' metadata.")
  prefix = "state/"
  return {k[len(prefix):]: tuple(getattr(v, "shape", ())) for k, v in leaf_paths(saved).items()
          if k.startswith(prefix)}


def restore_arrays(workdir: str, step: int, names: list[str]) -> dict[str, Any]:
  """Reads only the named arrays of the train state at `step` (names as `array_shapes` gives them),
  as numpy; the rest of the checkpoint (optimizer state, other layers) is not read."""
  import numpy as np
  shapes = array_shapes(workdir, step)
  item: dict[str, Any] = {}
  for name in names:
    node = item.setdefault("state", {})
    *parents, leaf = name.split("/")
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = jax.ShapeDtypeStruct(shapes[name], np.float32)
  as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
  mgr = _array_reader(workdir)
  try:
    out = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=item, restore_args=as_numpy, partial_restore=True)))
  finally:
    mgr.close()
  flat = leaf_paths(out["state"])
  return {name: np.asarray(flat[f"state/{name}"]) for name in names}
