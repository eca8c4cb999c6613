"""Device mesh and shardings: data and model parallelism with `jax.jit` over a named `Mesh`.

The mesh has two axes, ('data', 'model'). Batches are split over 'data'; what happens
to the parameters is the config's `mesh.strategy`:

  'data'    every parameter replicated (plain data parallelism; 'model' should be 1).
  'towers'  the 2012 two-GPU split (Krizhevsky et al. 2012, Sec. 3.2): every conv and FC
            layer keeps half of its output units on each device of the 'model' axis. For a
            grouped ("towered") convolution the output-channel half *is* the group, so each
            tower's kernel lives on one device, as on the two GTX 580s; conv3 and the FC
            layers read activations from both halves, which is where XLA inserts the
            exchange the paper describes.
  'fc'      "one weird trick" (Krizhevsky 2014): convolutions data-parallel over every
            device (replicated weights, batch split over both axes), fully-connected layers
            model-parallel (output units split over 'model').

Only shardings change between strategies, never the model code: XLA's SPMD partitioner
derives the communication from the parameter layouts, so every strategy computes the
same function (tests/test_parallel.py checks this on simulated devices). The same code
runs on one CPU, simulated CPU devices, GPUs, or many hosts after
`initialize_distributed`, because every array carries its sharding.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Callable, Iterator

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from alexnet_jax.errors import ConfigError

DATA = "data"
MODEL = "model"
STRATEGIES = ("data", "towers", "fc")


def _env_int(name: str) -> int | None:
  text = os.environ.get(name, "").strip()
  if not text:
    return None
  try:
    return int(text)
  except ValueError:
    raise ConfigError(f"${name}={text!r} must be an integer.") from None


def distributed_args(coordinator: str | None = None, num_processes: int | None = None,
                     process_id: int | None = None) -> tuple[str | None, int, int | None]:
  """Resolves (coordinator, num_processes, process_id): flags first, then the environment.

  Kept separate from `initialize_distributed` so the checks can be tested without
  starting a runtime. Raises ValueError naming the missing or inconsistent setting.
  """
  coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
  num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
  process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
  n = 1 if num_processes is None else num_processes
  if n < 1:
    raise ConfigError(f"--num_processes={n} must be at least 1.")
  if n > 1:
    if not coordinator:
      raise ConfigError(f"--num_processes={n} needs --coordinator=<host:port of process 0> "
                       "(or $JAX_COORDINATOR_ADDRESS).")
    if ":" not in coordinator:
      raise ConfigError(f"--coordinator={coordinator!r} must be host:port, e.g. 10.0.0.1:1234.")
    if process_id is None:
      raise ConfigError(f"--num_processes={n} needs --process_id=0..{n - 1} (or $JAX_PROCESS_ID).")
    if not 0 <= process_id < n:
      raise ConfigError(f"--process_id={process_id} must be in 0..{n - 1} for {n} processes.")
  return coordinator, n, process_id


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
  """Starts JAX's multi-host runtime from flags or the environment; returns whether it did.

  Flags win; otherwise JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID are
  read. With one process (the default) nothing is started. Must run before any other JAX
  call touches a device. On CPU, cross-process collectives use gloo.
  """
  coordinator, n, process_id = distributed_args(coordinator, num_processes, process_id)
  if n == 1:
    return False
  if "cpu" in os.environ.get("JAX_PLATFORMS", ""):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=n, process_id=process_id)
  return True


def make_mesh(mesh_cfg) -> Mesh:
  """A ('data', 'model') mesh over all devices (of all processes); `mesh_cfg` is config.mesh."""
  devices = jax.devices()
  model = max(1, int(mesh_cfg.model))
  strategy = getattr(mesh_cfg, "strategy", "data")
  check_strategy(strategy, model)
  if len(devices) % model:
    raise ConfigError(f"config.mesh.model={model} does not divide the {len(devices)} available devices.")
  data = int(mesh_cfg.data) if mesh_cfg.data > 0 else len(devices) // model
  if data * model != len(devices):
    raise ConfigError(
        f"config.mesh asks for data={data} × model={model} devices but {len(devices)} are available; "
        f"set config.mesh.data=-1 to use them all.")
  grid = np.asarray(devices).reshape(data, model)
  if jax.default_backend() != "cpu" and jax.process_count() == 1:
    # On accelerators, order devices so that 'model' neighbours share the fastest links.
    grid = mesh_utils.create_device_mesh((data, model), devices)
  return Mesh(grid, (DATA, MODEL))


def check_strategy(strategy: str, model: int) -> None:
  if strategy not in STRATEGIES:
    raise ConfigError(f"config.mesh.strategy={strategy!r} is not known; choose one of {', '.join(STRATEGIES)}.")
  if strategy == "data" and model > 1:
    raise ConfigError(f"config.mesh.model={model} splits parameters, which strategy 'data' never does; "
                     "use config.mesh.strategy=towers or fc, or config.mesh.model=1.")


def batch_axes(strategy: str = "data") -> tuple[str, ...]:
  """Mesh axes the batch dimension is split over: also 'model' for 'fc' (data-parallel convs)."""
  return (DATA, MODEL) if strategy == "fc" else (DATA,)


def batch_sharding(mesh: Mesh, strategy: str = "data") -> NamedSharding:
  return NamedSharding(mesh, P(batch_axes(strategy)))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_shards(mesh: Mesh, strategy: str = "data") -> int:
  return int(np.prod([mesh.shape[a] for a in batch_axes(strategy)]))


def check_batch_size(global_batch: int, mesh: Mesh, what: str = "config.batch_size",
                     strategy: str = "data") -> None:
  n = data_shards(mesh, strategy)
  if global_batch % n or global_batch % jax.process_count():
    raise ConfigError(
        f"{what}={global_batch} must be divisible by the {n} data-parallel devices and the "
        f"{jax.process_count()} processes; pick a multiple of {np.lcm(n, jax.process_count())}.")


def _split_output(path: tuple, leaf: Any, strategy: str) -> str | None:
  """'kernel' / 'bias' when this leaf is a weight that `strategy` splits on its output axis."""
  if not path or not hasattr(leaf, "shape"):
    return None
  name = getattr(path[-1], "key", getattr(path[-1], "name", None))
  if name == "kernel":
    ndim = len(leaf.shape)
    if strategy == "towers" and ndim in (2, 4):  # Dense (in, out) and Conv (h, w, in, out)
      return "kernel"
    if strategy == "fc" and ndim == 2:
      return "kernel"
  return "bias" if name == "bias" else None


def param_spec(shape: tuple[int, ...], model: int) -> P:
  """PartitionSpec splitting the last (output) axis over 'model' when it divides evenly."""
  if model > 1 and shape and shape[-1] % model == 0:
    return P(*([None] * (len(shape) - 1)), MODEL)
  return P()


def state_shardings(abstract_state, mesh: Mesh, strategy: str = "data"):
  """NamedSharding for every leaf of the train state under `strategy` (config.mesh.strategy).

  Works on any pytree (params, optimizer state, batch statistics): a leaf named 'kernel'
  (and the 'bias' beside it) is split on its output axis when the strategy splits that
  kind of layer; the optimizer's momentum buffers have the same paths below opt_state, so
  they follow their parameters. Everything else (step, scalars, BN statistics) is
  replicated. An output size the 'model' axis does not divide stays replicated.
  """
  check_strategy(strategy, mesh.shape[MODEL])
  repl = replicated(mesh)
  if strategy == "data" or mesh.shape[MODEL] == 1:
    return jax.tree.map(lambda _: repl, abstract_state)
  flat, treedef = jax.tree_util.tree_flatten_with_path(abstract_state)
  split_layers: dict[tuple, P] = {}
  for path, leaf in flat:
    if _split_output(path, leaf, strategy) == "kernel":
      split_layers[tuple(path[:-1])] = param_spec(tuple(leaf.shape), mesh.shape[MODEL])
  out = []
  for path, leaf in flat:
    kind = _split_output(path, leaf, strategy)
    spec = P()
    if kind == "kernel":
      spec = split_layers[tuple(path[:-1])]
    elif kind == "bias" and split_layers.get(tuple(path[:-1]), P()) != P():
      spec = param_spec(tuple(leaf.shape), mesh.shape[MODEL])
    out.append(NamedSharding(mesh, spec))
  return jax.tree_util.tree_unflatten(treedef, out)


def describe(shardings) -> dict[str, str]:
  """{'params/conv2/kernel': 'P(None, None, None, 'model')', ...} for the split leaves (logs, tests)."""
  flat = jax.tree_util.tree_flatten_with_path(shardings)[0]
  return {jax.tree_util.keystr(p, simple=True, separator="/"): str(s.spec)
          for p, s in flat if isinstance(s, NamedSharding) and s.spec != P()}


def host_to_global(tree, mesh: Mesh):
  """Replicated global arrays from host-local values that are equal on every process.

  Multi-host checkpoints can only hold global arrays; values built on one host (a fresh
  metrics accumulator, a scalar) become one replicated array over the whole mesh. With
  one process this is a plain device_put.
  """
  sharding = replicated(mesh)
  return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), tree)


def to_global(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Host-local numpy batch → one global array per field, sharded like `sharding`.

  Each process passes only its own rows (global batch / process count); the global array
  is their concatenation in process order.
  """
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def preemption_sync_available() -> bool:
  """Whether this is a multi-process run with JAX's preemption service (started by `initialize_distributed`)."""
  from jax._src import distributed
  return jax.process_count() > 1 and distributed.global_state.preemption_sync_manager is not None


def reached_preemption_sync_point(step: int) -> bool:
  """Multi-host stop agreement: true at the same step in every process once any process got SIGTERM.

  Call it once per step with increasing steps, in every process (JAX's preemption sync point).
  """
  from jax.experimental import multihost_utils
  return multihost_utils.reached_preemption_sync_point(step)


def staged(batches: Iterator[Any], put: Callable[[Any], Any], depth: int) -> Iterator[Any]:
  """put(batch) for each batch in a background thread, keeping `depth` results ready.

  `put` moves a host batch onto the devices (e.g. `to_global`), so reading the next batch
  (from a prepared store) and the host→device copy overlap the training step.
  """
  ready: queue.Queue = queue.Queue(maxsize=max(1, depth))
  stop = threading.Event()
  done = object()

  def work():
    try:
      for batch in batches:
        item = put(batch)
        while not stop.is_set():
          try:
            ready.put(item, timeout=0.1)
            break
          except queue.Full:
            continue
        if stop.is_set():
          return
      ready.put(done)
    except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
      ready.put(e)

  thread = threading.Thread(target=work, daemon=True, name="store-stage")
  thread.start()
  try:
    while True:
      item = ready.get()
      if item is done:
        return
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    # Wait for a transfer in flight: a daemon thread still inside the runtime when the
    # interpreter shuts down aborts the process.
    stop.set()
    thread.join(timeout=60)
