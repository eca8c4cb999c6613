"""The training loop: schedule, logging, evaluation during training, checkpoints, preemption.

Data flow: config → a prepared store (uint8 images, augmented on the device inside the step)
or the tf.data stream (augmented on the host) → `parallel.to_global` (sharded over the mesh's
'data' axis) → the jitted train step of `runtime.Runtime` → clu metrics → writers
(TensorBoard, console, metrics.jsonl) and the Orbax checkpoint manager.

Determinism: the batch at step k is a function of (seed, k) (see the input pipeline) and
the dropout key at step k is `fold_in(key(seed), k)`, so a run restored from the
checkpoint at step k continues exactly as if it had never stopped.

Only main.py and the experiments that train import this module; evaluation, prediction
and pretrained import use `runtime` and `checkpoint`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import parameter_overview
from flax import traverse_util

from alexnet_jax import checkpoint
from alexnet_jax import jsonl
from alexnet_jax import metrics as metrics_lib
from alexnet_jax import models
from alexnet_jax import optim
from alexnet_jax import parallel
from alexnet_jax import runtime
from alexnet_jax import workdir as workdir_lib
from alexnet_jax.errors import UserError
from alexnet_jax.eval import run as eval_run

# Augmented training images shown in TensorBoard at the start of a run.
_IMAGES_SHOWN = 8


class TrainingError(UserError):
  """Training cannot go on (e.g. the loss stopped being finite)."""


class _Preemption:
  """SIGTERM/SIGINT: finish the current step, save a checkpoint, exit; a second signal exits at once.

  One process: a Python handler sets the flag. Several processes (multi-host): the stop
  must be agreed, or the processes that did not see the signal would wait for the one that
  left. JAX's preemption service catches SIGTERM in whichever process gets it and tells
  every process; `parallel.reached_preemption_sync_point` then turns true at the same step
  everywhere, so all save that step together and exit. SIGINT is passed on as SIGTERM.

  Exiting at once is safe: Orbax finalises a checkpoint by renaming a complete temporary
  folder, so the latest complete checkpoint is never touched by an interrupted save.
  """

  def __init__(self):
    self.requested = False
    self.synced = parallel.preemption_sync_available()
    self._old = {}

  def __enter__(self):
    # With the preemption service, SIGTERM stays with JAX's own handler.
    signals = (signal.SIGINT,) if self.synced else (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
      try:
        self._old[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread (e.g. called from a notebook worker)
        pass
    return self

  def _handle(self, signum, frame):
    if self.requested:
      logging.warning("Second signal %d: exiting now; the latest complete checkpoint is kept.", signum)
      os._exit(128 + signum)
    self.requested = True
    logging.warning("Signal %d: finishing this step, saving a checkpoint, then exiting.", signum)
    if self.synced:
      signal.raise_signal(signal.SIGTERM)  # JAX's handler: every process learns of the stop

  def stop_after(self, step: int) -> bool:
    """Whether to save and stop after `step`; with several processes, call it at every step."""
    if self.synced:
      return parallel.reached_preemption_sync_point(step)
    return self.requested

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def _default_writer(workdir: str, resume_step: int | None):
  """TensorBoard + console (+ metrics.jsonl on process 0); console and metrics.jsonl when TensorBoard fails."""
  metric_writers, _ = metrics_lib.clu_writers()
  try:
    writers = [metrics_lib.default_writer(workdir, just_logging=jax.process_index() > 0, asynchronous=True)]
  except Exception as e:  # noqa: BLE001 - TensorFlow's summary writer fails in many ways
    logging.warning("No TensorBoard summaries for this run (%s: %s); metrics go to the console and "
                    "metrics.jsonl.", type(e).__name__, e)
    writers = [metric_writers.AsyncWriter(metric_writers.LoggingWriter())]
  if jax.process_index() == 0:
    writers.append(metrics_lib.JsonlWriter(os.path.join(workdir, "metrics.jsonl"), resume_step))
  return metric_writers.MultiWriter(writers)


def _shown_images(images: np.ndarray, config) -> np.ndarray:
  """Normalised train images back on the 0..255 scale, as uint8."""
  images = np.asarray(images, np.float32)
  images = images * np.asarray(config.input.std_rgb, np.float32) + np.asarray(config.input.mean_rgb, np.float32)
  return np.clip(np.round(images), 0, 255).astype(np.uint8)


def _first_step_checks(rt: runtime.Runtime, state, batch: dict, writer, step: int, show: bool) -> None:
  """At a run's first step: the size of LRN's normalisation term in the log, and (on a fresh
  start) a few augmented training images in TensorBoard, exactly as the step sees them."""
  if jax.process_count() > 1:
    return  # both need the whole batch and parameters on one host
  if not (show or models.layers.reports_lrn_terms(rt.model)):
    return
  images, lrn_terms = rt.first_step_view(state, batch, step)
  models.layers.log_lrn_terms(lrn_terms)
  if show:
    writer.write_images(step, {"train/augmented_images": _shown_images(images[:_IMAGES_SHOWN], rt.config)})


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str
                       ) -> tuple[runtime.TrainState, dict[str, Any]]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and evaluates.

  Returns the final state and a summary: final train and eval metrics, steps, wall time
  and throughput. A workdir whose run already finished is not trained again.
  """
  workdir_lib.prepare(workdir)
  # Every process of a multi-host run shares the workdir; process 0 holds the run's lock.
  lock = workdir_lib.Lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
  with lock, _Preemption() as preempt:
    try:
      return _train_locked(config, workdir, preempt)
    except OSError as e:
      if e.errno not in _DISK_ERRNOS:
        raise
      raise checkpoint.write_error(checkpoint.checkpoint_dir(workdir), None, e) from e


# Write failures that mean "the workdir's disk cannot take more": a clear error, not a traceback.
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _train_locked(config, workdir, preempt: _Preemption):
  rt = runtime.Runtime(config)
  info, cfg = rt.info, config
  mgr = checkpoint.manager(workdir, keep=cfg.keep_checkpoints, async_save=cfg.async_checkpoints)

  pending = metrics_lib.TrainMetrics.empty()
  start_step, prior_wall = 0, 0.0
  # Restored into shapes, dtypes and shardings: the weights are drawn only for a fresh start.
  latest, restored, meta = checkpoint.restore_latest(mgr, rt.checkpoint_tree(rt.abstract_state(), pending))
  main_process = jax.process_index() == 0
  if latest is not None:
    state, pending = restored.state, restored.pending
    start_step, prior_wall = int(state.step), float(meta.get("wall_s", 0.0))
    changed = workdir_lib.save_config(workdir, cfg) if main_process else {}
    if changed:
      logging.warning("Resuming with config fields changed since the last run: %s",
                      "; ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changed.items()))
    summary = jsonl.read_summary(workdir)
    if start_step >= rt.total_steps and summary and summary.get("done"):
      logging.info("This run already finished at step %d (top-1 %.4f). Nothing to do; use a new "
                   "--workdir to train again, or --mode=eval to evaluate.", start_step,
                   summary.get("eval", {}).get("top1", float("nan")))
      mgr.close()
      return state, summary
    logging.info("Resuming from step %d of %d.", start_step, rt.total_steps)
  else:
    state = rt.init_state()
    if main_process:
      workdir_lib.save_config(workdir, cfg)
    parameter_overview.log_parameter_overview(state.params)

  # A fresh start (no checkpoint) also drops metric rows left by a run killed before its
  # first checkpoint: the file must describe one history.
  writer = _default_writer(workdir, start_step)
  if latest is None:
    writer.write_hparams({k: v if isinstance(v, (int, float, str, bool)) else str(v)
                          for k, v in traverse_util.flatten_dict(cfg.to_dict(), sep=".").items()})
  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
  logging.info("Model %s: %s parameters, %d classes; %d steps (%d per epoch) of global batch %d on %d device(s).",
               cfg.model.name, f"{n_params:,}", info.num_classes, rt.total_steps, rt.steps_per_epoch,
               cfg.batch_size, jax.device_count())

  from clu import periodic_actions  # after metrics_lib.clu_writers: it imports clu's writers
  report = periodic_actions.ReportProgress(num_train_steps=rt.total_steps, writer=writer,
                                           every_steps=cfg.log_every_steps)
  eval_every = max(1, int(round(cfg.eval_every_epochs * rt.steps_per_epoch)))
  evaluate = eval_run.training_evaluation(rt)  # config.eval.in_training: protocols × sets
  host_batches = runtime.batch_source(cfg).train_batches(cfg, start_step=start_step,
                                                         process_index=jax.process_index(),
                                                         process_count=jax.process_count())
  batches = rt.device_batches(host_batches, cfg.input.prefetch)

  def meta(step, done=False):
    return {"step": step, "epoch": step / rt.steps_per_epoch, "done": done, "model": cfg.model.name,
            "num_classes": info.num_classes, "wall_s": prior_wall + time.time() - t0}

  def save(step, done=False):
    _finish_saves(mgr, last_ckpt)  # the previous async save: its failure names its own step
    try:
      checkpoint.save(mgr, step, rt.checkpoint_tree(state, pending), meta(step, done))
    except Exception as e:  # noqa: BLE001 - Orbax raises its own types for a failed write
      raise checkpoint.write_error(str(mgr.directory), step, e) from e

  t0 = time.time()
  finite_flags: list[tuple[int, jax.Array]] = []
  last_eval: dict[str, float] = {}
  last_train: dict[str, float] = {}
  last_ckpt = latest
  log_t, log_step = time.time(), start_step
  step = start_step
  while step < rt.total_steps:
    if preempt.requested and not preempt.synced and step == start_step:
      logging.warning("Signal received before the first step; exiting. Run the same command to resume.")
      break
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      batch = next(batches)
      if step == start_step:
        _first_step_checks(rt, state, batch, writer, step, show=latest is None and main_process)
      state, m, finite = rt.train_step(state, batch, rt.base_key)
    pending = pending.merge(m)
    finite_flags.append((step, finite))
    step += 1
    stop = preempt.stop_after(step)
    report(step)
    is_last = step == rt.total_steps
    # The flags are checked before anything reads the state (a log, an evaluation, a save): a
    # step whose update overflowed was applied (optim.guarded_update) and must not be saved.
    if (step % cfg.log_every_steps == 0 or step % eval_every == 0 or step % cfg.checkpoint_every_steps == 0
        or is_last or stop):
      _guard_finite(finite_flags, last_ckpt, cfg.nan_guard, mgr)
      finite_flags.clear()
    # A preempted run does not log early: its pending metrics go into the checkpoint, so the
    # resumed run writes the same rows as one that was never interrupted.
    if step % cfg.log_every_steps == 0 or is_last:
      last_train = metrics_lib.to_floats(pending.compute())
      pending = metrics_lib.TrainMetrics.empty()
      now = time.time()
      img_s = (step - log_step) * cfg.batch_size / max(now - log_t, 1e-9)
      log_t, log_step = now, step
      writer.write_scalars(step, {**{f"train/{k}": v for k, v in last_train.items()},
                                  "train/img_per_s": img_s, "epoch": step / rt.steps_per_epoch})
    if step % eval_every == 0 or is_last:
      with report.timed("eval"):
        last_eval = evaluate(state)
      state = state.replace(plateau=optim.plateau_update(cfg.schedule, state.plateau, 1.0 - last_eval["top1"],
                                                               step, eval_every))
      writer.write_scalars(step, {**{f"eval/{k}": v for k, v in last_eval.items()},
                                  "epoch": step / rt.steps_per_epoch,
                                  "lr_scale": float(state.plateau.scale)})
      logging.info("step %d (epoch %.2f): eval top-1 %.4f, top-5 %.4f, loss %.4f on %d examples", step,
                   step / rt.steps_per_epoch, last_eval["top1"], last_eval["top5"], last_eval["loss"],
                   int(last_eval["num_examples"]))
    if step % cfg.checkpoint_every_steps == 0 or is_last or stop:
      save(step, done=is_last)
      last_ckpt = step
    if stop and not is_last:
      logging.warning("Saved checkpoint at step %d; exiting. Run the same command to resume.", step)
      break
  _finish_saves(mgr, last_ckpt)
  mgr.close()
  writer.flush()
  wall = prior_wall + time.time() - t0
  done = step >= rt.total_steps
  if done and not last_eval:
    # Killed after the final checkpoint but before the summary was written: the rerun only
    # completes the record (metrics of the last step, re-evaluated if they were not logged).
    last_train, last_eval = _logged_metrics(workdir, step)
    if not last_eval:
      last_eval = evaluate(state)
  summary = {
      "done": done, "step": step, "total_steps": rt.total_steps, "epoch": step / rt.steps_per_epoch,
      "eval": last_eval, "train": last_train, "wall_s": wall, "config_name": cfg.name,
      "model": cfg.model.name, "dataset": cfg.dataset, "num_classes": info.num_classes,
      "num_params": n_params, "devices": jax.device_count(),
      "img_per_s": (step - start_step) * cfg.batch_size / max(time.time() - t0, 1e-9),
  }
  if main_process:
    jsonl.write_summary(workdir, summary)
  writer.close()
  return state, summary


def _finish_saves(mgr, last_ckpt: int | None) -> None:
  """Waits for the async checkpoint in flight; a failed write becomes a clear error."""
  try:
    mgr.wait_until_finished()
  except Exception as e:  # noqa: BLE001 - Orbax re-raises the background thread's error
    raise checkpoint.write_error(str(mgr.directory), last_ckpt, e) from e


def _logged_metrics(workdir: str, step: int) -> tuple[dict[str, float], dict[str, float]]:
  """The train and eval rows metrics.jsonl holds for `step` (without the 'train/'/'eval/' prefixes)."""
  train_m: dict[str, float] = {}
  eval_m: dict[str, float] = {}
  for row in jsonl.read(os.path.join(workdir, "metrics.jsonl")):
    if row.get("step") != step:
      continue
    for k, v in row.items():
      if k.startswith("train/") and k != "train/img_per_s":
        train_m[k[len("train/"):]] = v
      elif k.startswith("eval/"):
        eval_m[k[len("eval/"):]] = v
  return train_m, eval_m


def _guard_finite(flags, last_ckpt, enabled: bool, mgr) -> None:
  """NaN/inf guard, checked once per log interval (no per-step host sync)."""
  if not enabled or not flags:
    return
  values = jax.device_get([f for _, f in flags])
  for (step, _), ok in zip(flags, values):
    if not bool(ok):
      mgr.wait_until_finished()
      where = (f"The last good checkpoint is step {last_ckpt} in {mgr.directory} (kept)"
               if last_ckpt is not None else "No checkpoint was written yet")
      raise TrainingError(
          f"The loss, gradient or updated parameters became non-finite at step {step + 1}; training stopped "
          f"and nothing from that step was saved. {where}. Lower the learning rate (config.schedule.base_lr), add "
          f"config.optimizer.grad_clip_norm, or check the data.")
