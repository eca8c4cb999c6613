"""Start a run from converted weights: a step-0 checkpoint that main.py evaluates or fine-tunes.

The checkpoint has the same layout as any training checkpoint (train state with freshly
initialised optimizer state, empty metric accumulator, meta marked `pretrained`), so
`main.py --mode=eval` evaluates it and `main.py` (train mode) fine-tunes from it with
the config's recipe. The class count of the weights must match the config's dataset.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
from absl import logging

from alexnet_jax import checkpoint
from alexnet_jax import runtime
from alexnet_jax import workdir as workdir_lib


def save_pretrained(workdir: str, variables: Mapping[str, Any], config, num_classes: int | None = None) -> None:
  """Writes `variables` ({'params', optional 'batch_stats'}) as the step-0 checkpoint of `workdir`."""
  from alexnet_jax.data import input_pipeline

  workdir_lib.prepare(workdir)
  if os.path.isdir(checkpoint.checkpoint_dir(workdir)) and os.listdir(checkpoint.checkpoint_dir(workdir)):
    raise workdir_lib.WorkdirError(
        f"{workdir!r} already holds checkpoints; write pretrained weights into a new --workdir.")
  if num_classes is None:
    num_classes = jax.tree.leaves(variables["params"])[-1].shape[-1]
  info = input_pipeline.DatasetInfo(name=config.dataset, num_classes=num_classes, num_train=config.batch_size,
                                    num_eval=0, class_names=())
  with workdir_lib.Lock(workdir):
    rt = runtime.Runtime(config, info=info)
    state = rt.init_state()
    target = {"params": state.params, "batch_stats": state.batch_stats}
    given = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
    _check_same_tree(given, target)
    cast = jax.tree.map(lambda v, t: jax.device_put(jnp.asarray(v, t.dtype), t.sharding), given, target)
    state = state.replace(params=cast["params"], batch_stats=cast["batch_stats"])
    mgr = checkpoint.manager(workdir, keep=config.keep_checkpoints, async_save=False)
    checkpoint.save(mgr, 0, rt.checkpoint_tree(state),
                    {"step": 0, "epoch": 0.0, "done": False, "model": config.model.name,
                     "num_classes": num_classes, "wall_s": 0.0, "pretrained": True})
    mgr.wait_until_finished()
    mgr.close()
    workdir_lib.save_config(workdir, config)
  logging.info("Wrote pretrained weights as step 0 of %s", workdir)


def _check_same_tree(given, target) -> None:
  g = checkpoint.leaf_paths(given)
  t = checkpoint.leaf_paths(target)
  bad = sorted(set(g) ^ set(t)) + sorted(k for k in set(g) & set(t) if tuple(g[k].shape) != tuple(t[k].shape))
  if bad:
    raise checkpoint.CheckpointMismatchError(
        "The converted weights do not fit the config's model: " + ", ".join(bad[:20]))
