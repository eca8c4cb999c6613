"""Writes a run's trained parameters, or the layers matching a name, to one .npz file.

  python -m experiments.export_params <workdir> --out=params.npz [--match=conv1] [--step=N]
      [--dtype=float16]

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


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("workdir")
  p.add_argument("--out", required=True)
  p.add_argument("--match", default="", help="keep only parameter paths containing this text")
  p.add_argument("--step", type=int, default=None)
  p.add_argument("--dtype", default="float32", choices=("float32", "float16"))
  a = p.parse_args(argv)
  from alexnet_jax.errors import UserError
  try:
    info = export(a.workdir, a.out, a.match, a.step, a.dtype)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps({"out": a.out, **info}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
