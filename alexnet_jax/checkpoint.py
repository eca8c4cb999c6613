"""Orbax checkpoints of a run: save, restore, and refuse what does not fit.

Layout: <workdir>/checkpoints/<step>/{state, meta}. `state` is the whole TrainState
pytree (params, batch statistics, optimizer state with its step and learning rate,
plateau state) plus the pending train-metric accumulator; `meta` is JSON (step, epoch,
whether the run finished, the model name). Orbax writes each step into a temporary
folder and renames it when complete, so a checkpoint cut short by a kill is never
picked up on restore.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging


class CheckpointMismatchError(Exception):
  """The checkpoint was written by another model or config; nothing was loaded."""


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, *, keep: int = 3, async_save: bool = True, create: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=create, enable_async_checkpointing=async_save,
      cleanup_tmp_directories=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_names=("state", "meta"))


def save(mgr: ocp.CheckpointManager, step: int, tree: Any, meta: dict[str, Any], *, force: bool = True) -> None:
  mgr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)),
           force=force)


def _paths(tree: Any) -> dict[str, Any]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(p, simple=True, separator="/"): leaf for p, leaf in leaves}


def check_compatible(mgr: ocp.CheckpointManager, step: int, target: Any) -> None:
  """Compares the saved tree's names and shapes with `target`; raises listing every mismatch."""
  saved = mgr.item_metadata(step)["state"]
  if saved is None:
    raise CheckpointMismatchError(f"Checkpoint step {step} has no readable 'state' item.")
  saved_p = {k: tuple(getattr(v, "shape", ())) for k, v in _paths(saved).items()}
  want_p = {k: tuple(getattr(v, "shape", ())) for k, v in _paths(target).items()}
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
