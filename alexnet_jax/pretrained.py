"""Parameters in and out of runs: a checkpoint from given weights, and a run's weights to one file.

`save_pretrained` writes weights (converted from torchvision, or imported from a file) as a
checkpoint with the same layout as any training checkpoint (train state with freshly
initialised optimizer state, empty metric accumulator, meta marked `pretrained`), so
`main.py --mode=eval` evaluates it and `main.py` (train mode) fine-tunes from it with the
config's recipe. The class count of the weights must match the config's dataset.

  python -m alexnet_jax.pretrained export <workdir> --out=params.npz [--match=conv1] [--step=N]
      [--dtype=float16]
  python -m alexnet_jax.pretrained import <new workdir> --npz=params.npz --config=<config spec>

`export` reads only the parameter arrays of the checkpoint (no model is built, so it works for
any family) into an .npz keyed by parameter path (`conv1/kernel`, flax layout: a conv kernel is
H×W×in×out), with the step, the class count, BatchNorm statistics under `batch_stats/` (whole
exports only) and the run's config.json as the string `config_json`. `import` goes the other
way: a checkpoint for `--config` at the file's step, holding its parameters, so `--mode=eval`,
`predict` and the inspection commands can read a run whose checkpoint was too large to copy.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np
from absl import logging

from alexnet_jax import checkpoint
from alexnet_jax import runtime
from alexnet_jax import workdir as workdir_lib
from alexnet_jax.data import store_layout
from alexnet_jax.errors import UserError


class ParamsFileError(UserError):
  """A parameter file that cannot be read."""


def save_pretrained(workdir: str, variables: Mapping[str, Any], config, num_classes: int | None = None,
                    step: int = 0) -> None:
  """Writes `variables` ({'params', optional 'batch_stats'}) as the checkpoint at `step` (0 by
  default) of the new run `workdir`."""
  workdir_lib.prepare(workdir)
  refuse_used_workdir(workdir)
  if num_classes is None:
    num_classes = jax.tree.leaves(variables["params"])[-1].shape[-1]
  info = store_layout.DatasetInfo(name=config.dataset, num_classes=num_classes, num_train=config.batch_size,
                                  num_eval=0, class_names=())
  with workdir_lib.Lock(workdir):
    rt = runtime.Runtime(config, info=info)
    shapes = jax.eval_shape(rt.init_state)  # the leaves, shapes and dtypes, without drawing the weights
    target = {"params": shapes.params, "batch_stats": shapes.batch_stats}
    given = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
    _check_same_tree(given, target)
    state = rt.state_from_variables(jax.tree.map(lambda v, t: np.asarray(v, t.dtype), given, target))
    mgr = checkpoint.manager(workdir, keep=config.keep_checkpoints, async_save=False)
    checkpoint.save(mgr, step, rt.checkpoint_tree(state),
                    {"step": step, "epoch": 0.0 if step == 0 else None, "done": False, "model": config.model.name,
                     "num_classes": num_classes, "wall_s": 0.0, "pretrained": True})
    mgr.wait_until_finished()
    mgr.close()
    workdir_lib.save_config(workdir, config)
  logging.info("Wrote pretrained weights as step %d of %s", step, workdir)


def refuse_used_workdir(workdir: str) -> None:
  """WorkdirError when `workdir` already holds checkpoints: pretrained weights go into a new run."""
  if os.path.isdir(checkpoint.checkpoint_dir(workdir)) and os.listdir(checkpoint.checkpoint_dir(workdir)):
    raise workdir_lib.WorkdirError(
        f"{workdir!r} already holds checkpoints; write pretrained weights into a new --workdir.")


def _check_same_tree(given, target) -> None:
  g = checkpoint.leaf_paths(given)
  t = checkpoint.leaf_paths(target)
  bad = sorted(set(g) ^ set(t)) + sorted(k for k in set(g) & set(t) if tuple(g[k].shape) != tuple(t[k].shape))
  if bad:
    raise checkpoint.CheckpointMismatchError(
        "The converted weights do not fit the config's model: " + ", ".join(bad[:20]))


def export_params(workdir: str, out: str, match: str = "", step: int | None = None,
                  dtype: str = "float32") -> dict[str, Any]:
  """The run's parameters whose path contains `match` (all by default) at `step` (the latest by
  default) into the .npz file `out`; returns {'step', 'arrays': {path: shape}}."""
  import numpy as np
  mgr = checkpoint.open_read_only(workdir)
  try:
    step = checkpoint.chosen_step(mgr, workdir, step)
    num_classes = checkpoint.read_meta(mgr, step).get("num_classes")
  finally:
    mgr.close()
  saved = checkpoint.array_shapes(workdir, step)
  params = [n for n in saved if n.startswith("params/") and match in n[len("params/"):]]
  if not params:
    raise checkpoint.NoCheckpointError(f"No parameter of step {step} in {workdir!r} matches {match!r}.")
  stats = [n for n in saved if n.startswith("batch_stats/")] if not match else []
  arrays = checkpoint.restore_arrays(workdir, step, params + stats)
  files = {n.removeprefix("params/"): arrays[n].astype(dtype) for n in params}
  files.update({n: arrays[n] for n in stats})
  extra = {"num_classes": np.asarray(num_classes)} if num_classes is not None else {}
  config_json = os.path.join(workdir, "config.json")
  if os.path.exists(config_json):
    with open(config_json) as f:
      extra["config_json"] = np.asarray(f.read())
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez(out, step=np.asarray(step), **extra, **files)
  return {"step": step, "arrays": {k: list(v.shape) for k, v in files.items()}}


def import_params(npz: str, workdir: str, config) -> dict[str, Any]:
  """A checkpoint of `config`'s model in the new run `workdir`, holding the parameters (and
  BatchNorm statistics, when the file has them) of an `export_params` file, at its step."""
  import zipfile
  import numpy as np
  from flax import traverse_util
  try:
    data = np.load(npz)
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise ParamsFileError(f"--npz={npz}: cannot be read as an exported parameter file ({e}); give the .npz "
                          "that `python -m alexnet_jax.pretrained export` wrote.") from None
  names = [k for k in data.files if "/" in k]
  variables = {"params": traverse_util.unflatten_dict({k: data[k] for k in names
                                                       if not k.startswith("batch_stats/")}, sep="/")}
  stats = {k.removeprefix("batch_stats/"): data[k] for k in names if k.startswith("batch_stats/")}
  if stats:
    variables["batch_stats"] = traverse_util.unflatten_dict(stats, sep="/")
  step = int(data["step"]) if "step" in data.files else 0
  num_classes = int(data["num_classes"]) if "num_classes" in data.files else None
  save_pretrained(workdir, variables, config, num_classes=num_classes, step=step)
  return {"step": step, "parameters": len(names) - len(stats)}


def main(argv: list[str] | None = None) -> int:
  """`python -m alexnet_jax.pretrained export|import ...`; a user's mistake is one line and exit code 2."""
  import argparse
  import json
  import sys
  from alexnet_jax import config_files
  p = argparse.ArgumentParser(prog="python -m alexnet_jax.pretrained", description=__doc__.split("\n")[0])
  sub = p.add_subparsers(dest="command", required=True)
  e = sub.add_parser("export", help="a run's parameters to one .npz file")
  e.add_argument("workdir")
  e.add_argument("--out", required=True, help="the .npz file to write")
  e.add_argument("--match", default="", help="keep only parameter paths containing this text")
  e.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  e.add_argument("--dtype", default="float32", choices=("float32", "float16"))
  i = sub.add_parser("import", help="a checkpoint in a new workdir from an exported .npz file")
  i.add_argument("workdir")
  i.add_argument("--npz", required=True, help="the file `export` wrote")
  i.add_argument("--config", required=True, help="the config the parameters were trained with (family or file)")
  a = p.parse_args(argv)
  try:
    if a.command == "export":
      info = {"out": a.out, **export_params(a.workdir, a.out, a.match, a.step, a.dtype)}
    else:
      info = {"workdir": a.workdir, **import_params(a.npz, a.workdir, config_files.load(a.config))}
  except UserError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  print(json.dumps(info))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
