"""Writes a run's trained parameters, or the layers matching a name, to one .npz file.

  python -m experiments.export_params <workdir> --out=params.npz [--match=conv1] [--step=N]
      [--dtype=float16]
  python -m experiments.export_params <new workdir> --load=params.npz --config=<config spec>

The second form goes the other way: a checkpoint for `--config`, in a new workdir, holding the
file's parameters (every parameter of the model must be in it; optimizer state starts fresh),
so `--mode=eval`, `predict` and the inspection commands can read a run whose checkpoint was
too large to copy.

Reads the checkpoint without building the model (Orbax restores the saved tree as arrays),
so it works for any family. Keys are the parameter paths, e.g. `conv1/kernel` (flax layout:
a conv kernel is H×W×in×out). A run's `config.json` is copied into the file as the string
`config_json`, so a picture made from the file can say what it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def export(workdir: str, out: str, match: str = "", step: int | None = None, dtype: str = "float32") -> dict:
  import orbax.checkpoint as ocp
  from alexnet_jax import checkpoint
  mgr = checkpoint.open_read_only(workdir)
  try:
    steps = mgr.all_steps()
    if not steps:
      raise checkpoint.NoCheckpointError(f"No complete checkpoint in {checkpoint.checkpoint_dir(workdir)}.")
    step = steps[-1] if step is None else step
    tree = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
  finally:
    mgr.close()
  prefix = "state/params/"  # the TrainState's parameters (not the optimizer's copies)
  params = {k[len(prefix):]: np.asarray(v).astype(dtype) for k, v in checkpoint.leaf_paths(tree).items()
            if k.startswith(prefix) and (not match or match in k[len(prefix):])}
  if not params:
    raise checkpoint.NoCheckpointError(f"No parameter of step {step} in {workdir!r} matches {match!r}.")
  extra = {}
  cfg = os.path.join(workdir, "config.json")
  if os.path.exists(cfg):
    with open(cfg) as f:
      extra["config_json"] = np.asarray(f.read())
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez(out, step=np.asarray(step), **extra, **params)
  return {"step": step, "arrays": {k: list(v.shape) for k, v in params.items()}}


def load(npz: str, workdir: str, spec: str, config=None) -> dict:
  """Writes a checkpoint of `spec`'s model (or of `config`) holding the parameters in `npz`."""
  import jax
  import jax.numpy as jnp
  from flax import traverse_util
  from alexnet_jax import checkpoint, config_files, runtime, workdir as workdir_lib
  config = config if config is not None else config_files.load(spec)
  data = np.load(npz)
  rt = runtime.Runtime(config)
  state = rt.init_state()
  flat = traverse_util.flatten_dict(jax.device_get(state.params), sep="/")
  missing = sorted(set(flat) - set(data.files))
  if missing:
    raise checkpoint.CheckpointMismatchError(f"{npz} lacks {len(missing)} parameter(s) of this model, e.g. {missing[:5]}.")
  bad = [k for k in flat if tuple(data[k].shape) != tuple(flat[k].shape)]
  if bad:
    raise checkpoint.CheckpointMismatchError(f"{npz}: shapes differ from the model for {bad[:5]}.")
  params = traverse_util.unflatten_dict({k: jnp.asarray(data[k], flat[k].dtype) for k in flat}, sep="/")
  state = state.replace(params=jax.device_put(params, rt.state_sharding.params))
  step = int(data["step"]) if "step" in data.files else 0
  workdir_lib.prepare(workdir)
  mgr = checkpoint.manager(workdir, keep=1, async_save=False)
  checkpoint.save(mgr, step, rt.checkpoint_tree(state), {"step": step, "epoch": step / rt.steps_per_epoch,
                                                          "done": True, "model": config.model.name,
                                                          "num_classes": rt.info.num_classes, "wall_s": 0.0})
  mgr.wait_until_finished()
  mgr.close()
  if "config_json" in data.files:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(str(data["config_json"]))
  return {"step": step, "parameters": len(flat)}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("workdir")
  p.add_argument("--out", default="")
  p.add_argument("--match", default="", help="keep only parameter paths containing this text")
  p.add_argument("--step", type=int, default=None)
  p.add_argument("--dtype", default="float32", choices=("float32", "float16"))
  p.add_argument("--load", default="", help="write a checkpoint from this .npz into the (new) workdir instead")
  p.add_argument("--config", default="", help="with --load: the config (family or file, with arguments)")
  a = p.parse_args(argv)
  from alexnet_jax.errors import UserError
  if a.load and not a.config:
    p.error("--load needs --config (the config the parameters were trained with)")
  if not a.load and not a.out:
    p.error("give --out=<file.npz> (export) or --load=<file.npz> --config=... (import)")
  try:
    if a.load:
      info = load(a.load, a.workdir, a.config)
      print(json.dumps({"workdir": a.workdir, **info}))
      return 0
    info = export(a.workdir, a.out, a.match, a.step, a.dtype)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps({"out": a.out, **info}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
