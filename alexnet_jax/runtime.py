"""The model at run time: mesh, model, shardings, TrainState, the jitted train step, restore.

Training, evaluation, prediction and pretrained import all start here; none of them
imports the training loop (train.py). The train step is a plain function of
(state, batch, key): everything a step needs besides the batch comes from the config.
Batches from a prepared store hold uint8 images; the train step augments them on the device
first (`data/device_augment.py`). Evaluation, during training and after, is `eval/run.Evaluator`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from alexnet_jax import checkpoint
from alexnet_jax import host_memory
from alexnet_jax import metrics as metrics_lib
from alexnet_jax import models
from alexnet_jax import optim
from alexnet_jax import parallel
from alexnet_jax import xla_cpu
from alexnet_jax.data import device_augment
from alexnet_jax.errors import ConfigError


def uses_store(config) -> bool:
  return config.input.pipeline == "store"


def batch_source(config):
  """The module that yields host batches: a prepared store (numpy, no TensorFlow) or the
  tf.data stream; imported on first use so that model code stays free of TensorFlow."""
  if uses_store(config):
    from alexnet_jax.data import store
    return store
  from alexnet_jax.data import input_pipeline
  return input_pipeline


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  plateau: Any = None


def compute_dtype(config) -> Any:
  if config.dtype not in ("float32", "bfloat16"):
    raise ConfigError(f"config.dtype must be float32 or bfloat16, got {config.dtype!r}.")
  return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


def create_train_state(config, model, image_size: int, rng: jax.Array) -> TrainState:
  """Initialises parameters and optimizer state (call under jit for sharded outputs)."""
  variables = model.init({"params": rng, "dropout": rng}, jnp.zeros((1, image_size, image_size, 3)), train=False)
  return train_state_from(config, model, variables)


def train_state_from(config, model, variables: Mapping[str, Any]) -> TrainState:
  """The step-0 state of `variables` ({'params'[, 'batch_stats']}) with the optimizer's initial state."""
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


def model_variables(state: TrainState) -> dict[str, Any]:
  """{'params'[, 'batch_stats']}: what `apply_fn` needs for inference."""
  return {"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}


def train_step(state: TrainState, batch: dict[str, jax.Array], base_key: jax.Array, *,
               schedule: optim.Schedule, label_smoothing: float, aux_weight: float,
               augment: Callable | None = None) -> tuple[TrainState, metrics_lib.TrainMetrics, jax.Array]:
  """One SGD step. Returns the new state, this step's metrics and whether it was finite.

  `augment` (store batches) turns the uint8 images into augmented, normalised ones first,
  with per-example keys from (base_key, step). A step whose loss or gradient is not finite
  leaves the state untouched; one whose update overflows is applied and flagged
  (`optim.guarded_update`). The host checks the flags before it logs, evaluates or saves.
  """
  batch = augment(batch, base_key, state.step) if augment is not None else batch
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
  new_params, new_opt_state, finite, grad_norm = optim.guarded_update(state.tx, grads, opt_state, state.params,
                                                                      loss)
  new_state = state.replace(
      step=state.step + 1, params=new_params, opt_state=new_opt_state,
      batch_stats=jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_stats, state.batch_stats))
  m = metrics_lib.TrainMetrics.single_from_model_output(
      loss=loss, top1=metrics_lib.topk_correct(logits, batch["label"], 1),
      top5=metrics_lib.topk_correct(logits, batch["label"], 5), grad_norm=grad_norm, learning_rate=lr)
  return new_state, m, finite


class Runtime:
  """What training and inference share for one config: mesh, model, schedule, shardings, the train step."""

  def __init__(self, config: ml_collections.ConfigDict, info=None):
    self.config = config
    if config.keep_host_memory:
      host_memory.keep_freed_memory_on_cpu()  # before anything below starts the backend
    self.info = info if info is not None else batch_source(config).get_info(config)
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
    self.augment = device_augment.train_batch(config.input) if uses_store(config) else None
    step = functools.partial(train_step, schedule=self.schedule, label_smoothing=config.label_smoothing,
                             aux_weight=config.aux_loss_weight, augment=self.augment)
    self.compiler_options = xla_cpu.compiler_options(config.cpu_onednn)  # every step of this model
    self.train_step = jax.jit(step, in_shardings=(self.state_sharding, self.data_sharding, self.repl),
                              out_shardings=(self.state_sharding, self.repl, self.repl), donate_argnums=0,
                              compiler_options=self.compiler_options)

  def init_state(self) -> TrainState:
    return self._init(jax.random.fold_in(self.base_key, -1 % 2**31))

  def abstract_state(self) -> TrainState:
    """`init_state`'s leaves as shapes, dtypes and shardings, computing nothing (a restore target)."""
    shapes = jax.eval_shape(self.init_state)
    leaves = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s, weak_type=a.weak_type)
              for a, s in zip(jax.tree.leaves(shapes), jax.tree.leaves(self.state_sharding))]
    return jax.tree.unflatten(jax.tree.structure(self.state_sharding), leaves)

  def state_from_variables(self, variables: Mapping[str, Any]) -> TrainState:
    """The step-0 state holding `variables` ({'params'[, 'batch_stats']} with `init_state`'s leaves, shapes
    and dtypes), sharded as `init_state`'s: no random initialisation to overwrite (seconds for a big model)."""
    # Leaves in, leaves out: a state traced anew holds another optimizer object than the shardings' tree.
    leaves = jax.jit(lambda v: jax.tree.leaves(train_state_from(self.config, self.model, v)),
                     out_shardings=jax.tree.leaves(self.state_sharding))(variables)
    return jax.tree.unflatten(jax.tree.structure(self.state_sharding), leaves)

  def checkpoint_tree(self, state: TrainState, pending=None) -> checkpoint.Checkpointed:
    """What a checkpoint stores for `state` (and the pending train metrics, empty by default).

    The metric accumulator is made a global array so every process of a multi-host run can
    write and read the same checkpoint.
    """
    pending = metrics_lib.TrainMetrics.empty() if pending is None else pending
    return checkpoint.Checkpointed(state, parallel.host_to_global(pending, self.mesh))

  def first_step_view(self, state: TrainState, batch: dict[str, jax.Array], step: int
                      ) -> tuple[jax.Array, dict[str, float]]:
    """The images the train step at `step` sees for `batch` (store batches augmented as in the
    step) and, for a model with LRN and no BatchNorm, `layers.lrn_terms` on them: one compiled
    program for both."""
    lrn = models.layers.reports_lrn_terms(self.model)
    if self.augment is None and not lrn:
      return batch["image"], {}

    def view(params, batch, step):
      images = batch["image"] if self.augment is None else self.augment(batch, self.base_key, step)["image"]
      terms = models.layers.lrn_term_arrays(self.model, {"params": params}, images) if lrn else {}
      return images, terms

    images, terms = jax.jit(view)(state.params, batch, jnp.asarray(step, jnp.int32))
    return images, {k: float(v) for k, v in terms.items()}

  def device_batches(self, host_batches: Iterator[dict[str, np.ndarray]], prefetch: int) -> Iterator[dict]:
    """Moves host batches onto the mesh, keeping `prefetch` transfers in flight; a store's uint8
    batches are staged by a background thread so the host never stalls the step."""
    if uses_store(self.config):
      put = functools.partial(parallel.to_global, sharding=self.data_sharding)
      yield from parallel.staged(host_batches, put, prefetch)
      return
    queue: list[dict] = []
    for batch in host_batches:
      queue.append(parallel.to_global(batch, self.data_sharding))
      if len(queue) > prefetch:
        yield queue.pop(0)
    yield from queue


def restore_for_inference(config, workdir: str, step: int | None = None, info=None
                          ) -> tuple[Runtime, TrainState, int]:
  """(Runtime, restored TrainState, step) for the latest or given checkpoint of `workdir`."""
  ckpt_dir = checkpoint.checkpoint_dir(workdir)
  if not os.path.isdir(ckpt_dir):
    raise checkpoint.NoCheckpointError(f"No checkpoints in {workdir!r} (expected {ckpt_dir}). Train first, or point "
                            "--workdir at a trained run.")
  mgr = checkpoint.open_read_only(workdir)
  try:
    step = checkpoint.chosen_step(mgr, workdir, step)
    rt = Runtime(config, info=info)
    restored, _ = checkpoint.restore(mgr, step, rt.checkpoint_tree(rt.abstract_state()))
  finally:
    mgr.close()
  return rt, restored.state, step
