"""Running an evaluation: the multi-view device step, the Evaluator, and the two commands that
use it: evaluation while training (`training_evaluation`) and the eval command.

What to evaluate is declared once, in the config: `config.eval.in_training` (protocols × sets
evaluated every `config.eval_every_epochs` during training) and `config.eval.protocols` /
`config.eval.sets` (what `--mode=eval` runs by default). Both go through `Evaluator.run`: the
step averages the softmax over each image's V views on the device and returns the top-k
classes; the host scores them (`scoring.Tally`, the one top-k scorer of evaluation).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, Sequence

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
  """A model's jitted multi-view steps; evaluates protocols × sets for a given state (the
  restored one by default, or the current one of a training run)."""

  def __init__(self, rt: runtime.Runtime, state=None, k: int = 5):
    self.runtime, self.state, self.config = rt, state, rt.config
    self.k = min(k, rt.info.num_classes)
    self.multiple = jax.device_count()
    self.step = self._jit(functools.partial(views_step, k=self.k))
    self._store_steps: dict[str, Callable] = {}
    self._to_global = functools.partial(parallel.to_global, sharding=rt.data_sharding)

  def _jit(self, fn):
    rt = self.runtime
    return jax.jit(fn, in_shardings=(rt.state_sharding, rt.data_sharding), out_shardings=rt.repl,
                   compiler_options=rt.compiler_options)

  def predict_batch(self, batch: dict[str, np.ndarray], state=None) -> dict[str, np.ndarray]:
    return jax.device_get(self.step(self.state if state is None else state, self._to_global(batch)))

  def run(self, protocol: str, eval_set: sets_lib.EvalSet, state=None) -> tuple[dict[str, Any], scoring.Tally]:
    """Evaluates one protocol on one set; every image counted once (padding is masked).

    `center` and `10crop` on the validation set of a prepared store cut their views on the
    device from the stored uint8 images; every other protocol and set streams full-size images.
    """
    state = self.state if state is None else state
    cfg = self.config
    global_batch = views.images_per_batch(cfg, protocol, self.multiple)
    if _from_store(cfg, protocol, eval_set):
      from alexnet_jax.data import store
      batches = store.eval_batches(cfg, split=cfg.eval_split, batch_size=global_batch,
                                   process_index=jax.process_index(), process_count=jax.process_count())
      step = self._store_step(protocol)
    else:
      batches = eval_set.batches(views.make_preprocess(protocol, cfg), global_batch)
      step = self.step
    tally = scoring.Tally(self.runtime.info.num_classes)
    bar = progress.Progress(eval_set.size or None, f"{protocol} × {eval_set.name}", unit="images",
                            every_s=PROGRESS_EVERY_S)

    def add(out):
      out = jax.device_get(out)
      tally.add(out["topk"], out["nll"], out["label"], out["mask"], out.get("real"))
      bar.advance(int(np.asarray(out["mask"]).sum()))

    pending = None  # one batch in flight while the host scores the previous one
    for batch in self.runtime.device_batches(batches, cfg.input.prefetch):
      out = step(state, batch)
      if pending is not None:
        add(pending)
      pending = out
    if pending is not None:
      add(pending)
    result = {**tally.result(), "views": views.num_views(protocol, cfg.eval), **eval_set.notes}
    return result, tally

  def _store_step(self, protocol: str):
    """The jitted step for a batch of uint8 store images: `protocol`'s views cut on the device."""
    if protocol not in self._store_steps:
      input_cfg, k = self.config.input, self.k

      def step(state, batch):
        return views_step(state, {**batch, "image": device_augment.eval_views(input_cfg, protocol, batch["image"])},
                          k=k)
      self._store_steps[protocol] = self._jit(step)
    return self._store_steps[protocol]


def _from_store(config, protocol: str, eval_set: sets_lib.EvalSet) -> bool:
  """Whether `protocol` on `eval_set` reads the prepared store (the others stream full-size images)."""
  return (runtime.uses_store(config) and eval_set.name == "validation"
          and protocol in device_augment.store_protocols())


def run_all(evaluator: Evaluator, protocols: Sequence[str], sets: Sequence[str], *, state=None,
            process_index: int = 0, process_count: int = 1) -> tuple[dict, dict]:
  """results[protocol][set] and the tallies; a missing set fails before any compute."""
  config, info = evaluator.config, evaluator.runtime.info
  eval_sets = [sets_lib.make_set(s, config, info, process_index, process_count)
               for s in sets_lib.check_sets(sets)]
  results: dict[str, dict[str, Any]] = {}
  tallies: dict[tuple[str, str], scoring.Tally] = {}
  for protocol in views.check_protocols(protocols):
    for es in eval_sets:
      res, tally = evaluator.run(protocol, es, state=state)
      results.setdefault(protocol, {})[es.name] = res
      tallies[(protocol, es.name)] = tally
  return results, tallies


def metric_name(protocol: str, set_name: str, key: str, first: bool) -> str:
  """The metrics.jsonl name (after 'eval/') of one evaluation's number: the first declared
  protocol × set keeps the plain name (top1, loss, ...), the others '<protocol>/<set>/<key>'."""
  return key if first else f"{protocol}/{set_name}/{key}"


def training_evaluation(rt: runtime.Runtime) -> Callable[[Any], dict[str, float]]:
  """state → {metric: value} for the protocols × sets of `config.eval.in_training` (see `metric_name`).

  The sets are opened here, so a missing one fails before the first step. The first protocol
  on the first set is the headline: its top-1 drives the plateau schedule.
  """
  cfg = rt.config
  protocols = views.check_protocols(cfg.eval.in_training.protocols)
  evaluator = Evaluator(rt)
  eval_sets = [sets_lib.make_set(s, cfg, rt.info, jax.process_index(), jax.process_count())
               for s in sets_lib.check_sets(cfg.eval.in_training.sets)]

  def evaluate(state) -> dict[str, float]:
    out: dict[str, float] = {}
    for i, (protocol, es) in enumerate(itertools.product(protocols, eval_sets)):
      _, tally = evaluator.run(protocol, es, state=state)
      out.update({metric_name(protocol, es.name, k, i == 0): float(v) for k, v in tally.result().items()})
    return out

  return evaluate


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
