"""Training and evaluation: TrainState, the jitted steps, and `train_and_evaluate`.

Data flow: config → input pipeline (host numpy batches) → `parallel.to_global` (sharded
over the mesh's 'data' axis) → jitted `train_step` → clu metrics → writers (TensorBoard,
console, metrics.jsonl) and the Orbax checkpoint manager. Evaluation takes the same path
with `eval_step` and a mask for padded examples.

Determinism: the batch at step k is a function of (seed, k) (see the input pipeline) and
the dropout key at step k is `fold_in(key(seed), k)`, so a run restored from the
checkpoint at step k continues exactly as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import signal
import time
from typing import Any, Callable, Iterator

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from clu import parameter_overview
from flax.training import train_state

from alexnet_jax import checkpoint
from alexnet_jax import metrics as metrics_lib  # before clu.periodic_actions: loads clu's writers without TF
from alexnet_jax import models
from alexnet_jax import optim
from alexnet_jax import parallel
from alexnet_jax import workdir as workdir_lib
from alexnet_jax.data import device_augment
from clu import periodic_actions  # noqa: E402,I001  (after metrics_lib, see there)

metric_writers = metrics_lib.metric_writers


def _data(config):
  """The batch source: a prepared store (no TensorFlow) or the tf.data stream, imported on first use."""
  if config.input.get("pipeline", "stream") == "store":
    from alexnet_jax.data import store
    return store
  from alexnet_jax.data import input_pipeline
  return input_pipeline


class TrainingError(Exception):
  """Training cannot go on (e.g. the loss stopped being finite)."""


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  plateau: Any = None


def compute_dtype(config) -> Any:
  if config.dtype not in ("float32", "bfloat16"):
    raise ValueError(f"config.dtype must be float32 or bfloat16, got {config.dtype!r}.")
  return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


def create_train_state(config, model, image_size: int, rng: jax.Array) -> TrainState:
  """Initialises parameters and optimizer state (call under jit for sharded outputs)."""
  variables = model.init({"params": rng, "dropout": rng}, jnp.zeros((1, image_size, image_size, 3)), train=False)
  params = variables["params"]
  tx = optim.make_optimizer(config.optimizer, params)
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                           batch_stats=variables.get("batch_stats", {}),
                           plateau=optim.plateau_init(config.schedule))


def cross_entropy(logits: jax.Array, labels: jax.Array, smoothing: float) -> jax.Array:
  if smoothing > 0:
    onehot = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), smoothing)
    return optax.softmax_cross_entropy(logits, onehot)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def train_step(state: TrainState, batch: dict[str, jax.Array], base_key: jax.Array, *,
               schedule: optim.Schedule, label_smoothing: float, aux_weight: float,
               augment: Callable | None = None) -> tuple[TrainState, metrics_lib.TrainMetrics, jax.Array]:
  """One SGD step. Returns the new state, this step's metrics and whether it was finite.

  A step whose loss or gradient is not finite leaves the state untouched (no NaN ever
  reaches the parameters or a checkpoint); the host checks the flag at the next log.
  """
  batch = augment(batch, base_key, state.step) if augment else batch  # uint8 store batches: device_augment
  key = jax.random.fold_in(base_key, state.step)
  has_bn = bool(state.batch_stats)

  def loss_fn(params):
    variables = {"params": params, **({"batch_stats": state.batch_stats} if has_bn else {})}
    logits, mutated = state.apply_fn(variables, batch["image"], train=True, rngs={"dropout": key},
                                     mutable=["batch_stats", "aux"])
    loss = cross_entropy(logits, batch["label"], label_smoothing).mean()
    for aux in jax.tree.leaves(mutated.get("aux", {})):
      loss = loss + aux_weight * cross_entropy(aux.astype(jnp.float32), batch["label"], label_smoothing).mean()
    return loss, (logits, mutated.get("batch_stats", state.batch_stats))

  (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  lr = schedule(state.step) * state.plateau.scale
  opt_state = state.opt_state
  opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
  updates, new_opt_state = state.tx.update(grads, opt_state, state.params)
  new_params = optax.apply_updates(state.params, updates)
  grad_norm = optax.global_norm(grads)
  # A finite gradient times a huge learning rate can still overflow the parameters, so the
  # new parameters are checked too: a step that would store inf/NaN is never applied.
  params_ok = jax.tree.reduce(jnp.logical_and, jax.tree.map(lambda p: jnp.isfinite(p).all(), new_params),
                              jnp.array(True))
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & params_ok

  def pick(new, old):
    return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)

  new_state = state.replace(
      step=state.step + 1,
      params=pick(new_params, state.params),
      opt_state=pick(new_opt_state, opt_state),
      batch_stats=pick(new_stats, state.batch_stats),
  )
  m = metrics_lib.TrainMetrics.single_from_model_output(
      loss=loss, top1=metrics_lib.topk_correct(logits, batch["label"], 1),
      top5=metrics_lib.topk_correct(logits, batch["label"], 5), grad_norm=grad_norm, learning_rate=lr)
  return new_state, m, finite


def eval_step(state: TrainState, batch: dict[str, jax.Array], input_cfg=None) -> metrics_lib.EvalMetrics:
  """Metrics of one evaluation batch; padded examples (mask 0) do not count."""
  batch = device_augment.eval_batch(input_cfg, batch) if input_cfg is not None else batch
  variables = {"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}
  logits = state.apply_fn(variables, batch["image"], train=False)
  labels = batch["label"]
  return metrics_lib.EvalMetrics.single_from_model_output(
      loss=optax.softmax_cross_entropy_with_integer_labels(logits, labels),
      top1=metrics_lib.topk_correct(logits, labels, 1), top5=metrics_lib.topk_correct(logits, labels, 5),
      mask=batch["mask"])


class _Preemption:
  """SIGTERM/SIGINT: the first finishes the current step and saves; a second exits at once.

  Exiting at once is safe: Orbax finalises a checkpoint by renaming a complete temporary
  folder, so the latest complete checkpoint is never touched by an interrupted save.
  """

  def __init__(self):
    self.requested = False
    self._old = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
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

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


@flax.struct.dataclass
class _Checkpointed:
  """Everything a checkpoint holds besides the JSON meta."""
  state: TrainState
  pending: metrics_lib.TrainMetrics  # train metrics accumulated since the last log


def checkpoint_tree(trainer: "Trainer", state: TrainState, pending=None) -> _Checkpointed:
  """What a checkpoint stores for `state` (and the pending train metrics, empty by default).

  The metric accumulator is made a global array so every process of a multi-host run can
  write and read the same checkpoint.
  """
  pending = metrics_lib.TrainMetrics.empty() if pending is None else pending
  return _Checkpointed(state, parallel.host_to_global(pending, trainer.mesh))


class Trainer:
  """Holds what the train and eval loops share: mesh, model, jitted steps, shardings."""

  def __init__(self, config: ml_collections.ConfigDict, info=None):
    self.config = config
    self.info = info if info is not None else _data(config).get_info(config)
    self.mesh = parallel.make_mesh(config.mesh)
    strategy = config.mesh.strategy
    parallel.check_batch_size(config.batch_size, self.mesh, strategy=strategy)
    parallel.check_batch_size(config.eval_batch_size, self.mesh, "config.eval_batch_size", strategy=strategy)
    self.model = models.build_model(config.model, self.info.num_classes, compute_dtype(config))
    self.steps_per_epoch, self.total_steps = optim.steps_for(
        self.info.num_train, config.batch_size, config.num_epochs)
    if config.num_train_steps > 0:
      self.total_steps = config.num_train_steps
    self.schedule = optim.make_schedule(config.schedule, self.steps_per_epoch, self.total_steps)
    self.base_key = jax.random.key(config.seed)
    self.data_sharding = parallel.batch_sharding(self.mesh, config.mesh.strategy)
    self.repl = parallel.replicated(self.mesh)

    init = functools.partial(create_train_state, config, self.model, config.input.image_size)
    abstract = jax.eval_shape(init, self.base_key)
    self.state_sharding = parallel.state_shardings(abstract, self.mesh, config.mesh.strategy)
    self._init = jax.jit(init, out_shardings=self.state_sharding)
    step = functools.partial(train_step, schedule=self.schedule, label_smoothing=config.label_smoothing,
                             aux_weight=config.aux_loss_weight, augment=device_augment.train_batch(config.input))
    self.train_step = jax.jit(step, in_shardings=(self.state_sharding, self.data_sharding, self.repl),
                              out_shardings=(self.state_sharding, self.repl, self.repl), donate_argnums=0)
    self.eval_step = jax.jit(functools.partial(eval_step, input_cfg=config.input),
                             in_shardings=(self.state_sharding, self.data_sharding), out_shardings=self.repl)

  def init_state(self) -> TrainState:
    return self._init(jax.random.fold_in(self.base_key, -1 % 2**31))

  def device_batches(self, host_batches: Iterator[dict[str, np.ndarray]], prefetch: int) -> Iterator[dict]:
    """Moves host batches onto the mesh, keeping `prefetch` transfers in flight."""
    queue: list[dict] = []
    for batch in host_batches:
      queue.append(parallel.to_global(batch, self.data_sharding))
      if len(queue) > prefetch:
        yield queue.pop(0)
    yield from queue

  def evaluate(self, state: TrainState, split: str | None = None) -> dict[str, float]:
    """Loss, top-1 and top-5 over every example of the split (remainders padded and masked)."""
    cfg = self.config
    batches = _data(cfg).eval_batches(cfg, split=split, process_index=jax.process_index(),
                                          process_count=jax.process_count())
    acc = metrics_lib.EvalMetrics.empty()
    n = 0.0
    for batch in self.device_batches(batches, cfg.input.prefetch):
      acc = acc.merge(self.eval_step(state, batch))
      n += batch["mask"].sum()
    out = metrics_lib.to_floats(acc.compute())
    out["num_examples"] = float(n)
    return out


def _default_writer(workdir: str, resume_step: int | None) -> metric_writers.MetricWriter:
  writers = [metrics_lib.default_writer(workdir, just_logging=jax.process_index() > 0, asynchronous=True)]
  if jax.process_index() == 0:
    writers.append(metrics_lib.JsonlWriter(os.path.join(workdir, "metrics.jsonl"), resume_step))
  return metric_writers.MultiWriter(writers)


def _write_summary(workdir: str, summary: dict[str, Any]) -> None:
  if jax.process_index() != 0:
    return
  path = os.path.join(workdir, "summary.json")
  with open(path + ".tmp", "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)


def read_summary(workdir: str) -> dict[str, Any] | None:
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> tuple[TrainState, dict[str, Any]]:
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
  trainer = Trainer(config)
  info, cfg = trainer.info, config
  mgr = checkpoint.manager(workdir, keep=cfg.keep_checkpoints, async_save=cfg.async_checkpoints)

  state = trainer.init_state()
  pending = metrics_lib.TrainMetrics.empty()
  start_step, prior_wall = 0, 0.0
  latest, restored, meta = checkpoint.restore_latest(mgr, checkpoint_tree(trainer, state, pending))
  if latest is not None:
    state, pending = restored.state, restored.pending
    start_step, prior_wall = int(state.step), float(meta.get("wall_s", 0.0))
    changed = workdir_lib.save_config(workdir, cfg) if jax.process_index() == 0 else {}
    if changed:
      logging.warning("Resuming with config fields changed since the last run: %s",
                      "; ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changed.items()))
    summary = read_summary(workdir)
    if start_step >= trainer.total_steps and summary and summary.get("done"):
      logging.info("This run already finished at step %d (top-1 %.4f). Nothing to do; use a new "
                   "--workdir to train again, or --mode=eval to evaluate.", start_step,
                   summary.get("eval", {}).get("top1", float("nan")))
      mgr.close()
      return state, summary
    logging.info("Resuming from step %d of %d.", start_step, trainer.total_steps)
  else:
    if jax.process_index() == 0:
      workdir_lib.save_config(workdir, cfg)
    parameter_overview.log_parameter_overview(state.params)

  # A fresh start (no checkpoint) also drops metric rows left by a run killed before its
  # first checkpoint: the file must describe one history.
  writer = _default_writer(workdir, start_step)
  if latest is None:
    writer.write_hparams({k: v for k, v in _flat(cfg.to_dict()).items()})
  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
  logging.info("Model %s: %s parameters, %d classes; %d steps (%d per epoch) of global batch %d on %d device(s).",
               cfg.model.name, f"{n_params:,}", info.num_classes, trainer.total_steps, trainer.steps_per_epoch,
               cfg.batch_size, jax.device_count())

  report = periodic_actions.ReportProgress(num_train_steps=trainer.total_steps, writer=writer,
                                           every_steps=cfg.log_every_steps)
  eval_every = max(1, int(round(cfg.eval_every_epochs * trainer.steps_per_epoch)))
  host_batches = _data(cfg).train_batches(cfg, start_step=start_step, process_index=jax.process_index(),
                                          process_count=jax.process_count())
  if cfg.input.get("pipeline", "stream") == "store":  # a thread stages uint8 batches on the devices
    put = functools.partial(parallel.to_global, sharding=trainer.data_sharding)
    batches = _data(cfg).staged(host_batches, put, cfg.input.prefetch)
  else:
    batches = trainer.device_batches(host_batches, cfg.input.prefetch)

  def meta(step, done=False):
    return {"step": step, "epoch": step / trainer.steps_per_epoch, "done": done, "model": cfg.model.name,
            "num_classes": info.num_classes, "wall_s": prior_wall + time.time() - t0}

  def save(step, done=False):
    _finish_saves(mgr, last_ckpt)  # the previous async save: its failure names its own step
    try:
      checkpoint.save(mgr, step, checkpoint_tree(trainer, state, pending), meta(step, done))
    except Exception as e:  # noqa: BLE001 - Orbax raises its own types for a failed write
      raise checkpoint.write_error(str(mgr.directory), step, e) from e

  t0 = time.time()
  finite_flags: list[tuple[int, jax.Array]] = []
  last_eval: dict[str, float] = {}
  last_train: dict[str, float] = {}
  last_ckpt = latest
  log_t, log_step = time.time(), start_step
  step = start_step
  while step < trainer.total_steps:
    if preempt.requested and step == start_step:  # signalled during start-up: nothing new to save
      logging.warning("Signal received before the first step; exiting. Run the same command to resume.")
      break
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      batch = next(batches)
      state, m, finite = trainer.train_step(state, batch, trainer.base_key)
    pending = pending.merge(m)
    finite_flags.append((step, finite))
    step += 1
    report(step)
    is_last = step == trainer.total_steps
    if step % cfg.log_every_steps == 0 or is_last or preempt.requested:
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
                                  "train/img_per_s": img_s, "epoch": step / trainer.steps_per_epoch})
    if step % eval_every == 0 or is_last:
      with report.timed("eval"):
        last_eval = trainer.evaluate(state)
      state = state.replace(plateau=optim.plateau_update(cfg.schedule, state.plateau, 1.0 - last_eval["top1"]))
      writer.write_scalars(step, {**{f"eval/{k}": v for k, v in last_eval.items()},
                                  "epoch": step / trainer.steps_per_epoch,
                                  "lr_scale": float(state.plateau.scale)})
      logging.info("step %d (epoch %.2f): eval top-1 %.4f, top-5 %.4f, loss %.4f on %d examples", step,
                   step / trainer.steps_per_epoch, last_eval["top1"], last_eval["top5"], last_eval["loss"],
                   int(last_eval["num_examples"]))
    if step % cfg.checkpoint_every_steps == 0 or is_last or preempt.requested:
      save(step, done=is_last)
      last_ckpt = step
    if preempt.requested and not is_last:
      logging.warning("Saved checkpoint at step %d; exiting. Run the same command to resume.", step)
      break
  _finish_saves(mgr, last_ckpt)
  mgr.close()
  writer.flush()
  wall = prior_wall + time.time() - t0
  done = step >= trainer.total_steps
  if done and not last_eval:
    # Killed after the final checkpoint but before the summary was written: the rerun only
    # completes the record (metrics of the last step, re-evaluated if they were not logged).
    last_train, last_eval = _logged_metrics(workdir, step)
    if not last_eval:
      last_eval = trainer.evaluate(state)
  summary = {
      "done": done, "step": step, "total_steps": trainer.total_steps, "epoch": step / trainer.steps_per_epoch,
      "eval": last_eval, "train": last_train, "wall_s": wall, "config_name": cfg.name,
      "model": cfg.model.name, "dataset": cfg.dataset, "num_classes": info.num_classes,
      "num_params": n_params, "devices": jax.device_count(),
      "img_per_s": (step - start_step) * cfg.batch_size / max(time.time() - t0, 1e-9),
  }
  _write_summary(workdir, summary)
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
  for row in metrics_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl")):
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
          f"The loss, gradient or updated parameters became non-finite at step {step + 1}; the update was "
          f"not applied and training stopped. {where}. Lower the learning rate (config.schedule.base_lr), add "
          f"config.optimizer.grad_clip_norm, or check the data.")


def _flat(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
  return out
