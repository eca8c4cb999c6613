"""Running an evaluation: the multi-view device step, the Evaluator, and the eval command.

The step averages the softmax over each image's V views on the device and returns the
top-k classes; the host scores them (`scoring.Tally`) and logs progress with an ETA.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from alexnet_jax import parallel
from alexnet_jax import progress
from alexnet_jax import runtime
from alexnet_jax.data import device_augment
from alexnet_jax.eval import report
from alexnet_jax.eval import scoring
from alexnet_jax.eval import sets as sets_lib
from alexnet_jax.eval import views

PROGRESS_EVERY_S = 5.0  # seconds between progress lines


def views_step(state, batch: dict, *, k: int) -> dict:
  """Softmax averaged over each image's views: top-k classes, their probabilities, the label's NLL.

  batch['image'] is [B, V, S, S, 3]; the V views are folded into the batch for one forward pass.
  """
  images = batch["image"]
  b, v = images.shape[:2]
  logits = state.apply_fn(runtime.model_variables(state), images.reshape((b * v,) + images.shape[2:]),
                          train=False)
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).reshape(b, v, -1).mean(axis=1)
  top_p, top_i = jax.lax.top_k(probs, k)
  label_p = jnp.take_along_axis(probs, batch["label"][:, None], axis=1)[:, 0]
  out = {"topk": top_i, "topk_prob": top_p, "nll": -jnp.log(jnp.maximum(label_p, 1e-30)),
         "label": batch["label"], "mask": batch["mask"]}
  if "real" in batch:
    out["real"] = batch["real"]
  return out


class Evaluator:
  """A restored model plus a jitted multi-view step; evaluates protocols × sets."""

  def __init__(self, rt: runtime.Runtime, state, k: int = 5):
    self.runtime, self.state, self.config = rt, state, rt.config
    self.k = min(k, rt.info.num_classes)
    self.multiple = jax.device_count()
    self._step = jax.jit(functools.partial(views_step, k=self.k),
                         in_shardings=(rt.state_sharding, rt.data_sharding), out_shardings=rt.repl)
    self._to_global = functools.partial(parallel.to_global, sharding=rt.data_sharding)

  def predict_batch(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return jax.device_get(self._step(self.state, self._to_global(batch)))

  def run(self, protocol: str, eval_set: sets_lib.EvalSet) -> tuple[dict[str, Any], scoring.Tally]:
    """Evaluates one protocol on one set; every image counted once (padding is masked).

    `center` and `10crop` on the validation set of a prepared store cut their views on the
    device from the stored uint8 images; every other protocol and set streams full-size images.
    """
    global_batch = views.images_per_batch(self.config, protocol, self.multiple)
    if _from_store(self.config, protocol, eval_set):
      from alexnet_jax.data import store
      batches = store.eval_batches(self.config, split=self.config.eval_split, batch_size=global_batch,
                                   process_index=jax.process_index(), process_count=jax.process_count())
      predict = self._store_step(protocol)
    else:
      batches = eval_set.batches(views.make_preprocess(protocol, self.config), global_batch)
      predict = self.predict_batch
    tally = scoring.Tally(self.runtime.info.num_classes)
    bar = progress.Progress(eval_set.size or None, f"{protocol} × {eval_set.name}", unit="images",
                            every_s=PROGRESS_EVERY_S)
    for batch in batches:
      out = predict(batch)
      tally.add(out["topk"], out["nll"], out["label"], out["mask"], out.get("real"))
      bar.advance(int(np.asarray(out["mask"]).sum()))
    result = {**tally.result(), "views": views.num_views(protocol, self.config.eval), **eval_set.notes}
    return result, tally


  def _store_step(self, protocol: str):
    """batch of uint8 store images → predictions of `protocol`'s views, cut on the device."""
    rt, cfg = self.runtime, self.config

    def step(state, batch):
      return views_step(state, {**batch, "image": device_augment.eval_views(cfg.input, protocol, batch["image"])},
                        k=self.k)

    fn = jax.jit(step, in_shardings=(rt.state_sharding, rt.data_sharding), out_shardings=rt.repl)
    return lambda batch: jax.device_get(fn(self.state, self._to_global(batch)))


def _from_store(config, protocol: str, eval_set: sets_lib.EvalSet) -> bool:
  """Whether `protocol` on `eval_set` reads the prepared store (the others stream full-size images)."""
  return (runtime.uses_store(config) and eval_set.name == "validation"
          and protocol in device_augment.store_protocols())


def run_all(evaluator: Evaluator, protocols: Sequence[str], sets: Sequence[str], *,
            process_index: int = 0, process_count: int = 1) -> tuple[dict, dict]:
  """results[protocol][set] and the tallies; a missing set fails before any compute."""
  config, info = evaluator.config, evaluator.runtime.info
  eval_sets = [sets_lib.make_set(s, config, info, process_index, process_count)
               for s in sets_lib.check_sets(sets)]
  results: dict[str, dict[str, Any]] = {}
  tallies: dict[tuple[str, str], scoring.Tally] = {}
  for protocol in views.check_protocols(protocols):
    for es in eval_sets:
      res, tally = evaluator.run(protocol, es)
      results.setdefault(protocol, {})[es.name] = res
      tallies[(protocol, es.name)] = tally
  return results, tallies


def evaluate_checkpoint(config, workdir: str, step: int | None = None, *,
                        protocols: Sequence[str] | None = None, sets: Sequence[str] | None = None,
                        write: bool = True) -> dict[str, Any]:
  """The eval command: restore, run protocols × sets, print the table, write eval/ outputs."""
  protocols = views.check_protocols(protocols or config.eval.protocols)
  sets = sets_lib.check_sets(sets or config.eval.sets)
  rt, state, step = runtime.restore_for_inference(config, workdir, step)
  evaluator = Evaluator(rt, state)
  results, tallies = run_all(evaluator, protocols, sets, process_index=jax.process_index(),
                             process_count=jax.process_count())
  print(f"Checkpoint step {step} of {workdir}:\n{report.format_table(results)}")
  out = {"step": step, "results": results}
  if write and jax.process_index() == 0:
    out_dir = report.write_outputs(workdir, step, results, tallies, rt.info.class_names, config)
    print(f"Wrote {out_dir}/step_{step}.json, report.md, per-class and confusion tables and pictures.")
  return out
