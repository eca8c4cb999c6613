"""Device mesh and shardings: data parallelism with `jax.jit` over a named `Mesh`.

The batch is split over the mesh's 'data' axis; parameters and optimizer state are
replicated. The same code runs on one CPU, eight simulated CPU devices, one GPU or many
hosts (after `initialize_distributed`), because every array carries its sharding.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"
MODEL = "model"


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Starts JAX's multi-host runtime from flags or the environment (no-op for one process).

  Flags win; otherwise JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID are read,
  and on clusters that JAX detects itself (SLURM, TPU pods) `jax.distributed.initialize()`
  needs no arguments at all.
  """
  coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
  if num_processes is None and os.environ.get("JAX_NUM_PROCESSES"):
    num_processes = int(os.environ["JAX_NUM_PROCESSES"])
  if process_id is None and os.environ.get("JAX_PROCESS_ID"):
    process_id = int(os.environ["JAX_PROCESS_ID"])
  if coordinator and (num_processes or 1) > 1:
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)


def make_mesh(mesh_cfg) -> Mesh:
  """A ('data', 'model') mesh over all devices; `mesh_cfg` is config.mesh."""
  devices = jax.devices()
  model = max(1, mesh_cfg.model)
  data = mesh_cfg.data if mesh_cfg.data > 0 else len(devices) // model
  if data * model != len(devices):
    raise ValueError(
        f"config.mesh asks for data={data} × model={model} devices but {len(devices)} are available.")
  return Mesh(np.asarray(devices).reshape(data, model), (DATA, MODEL))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_size(global_batch: int, mesh: Mesh, what: str = "config.batch_size") -> None:
  n = mesh.shape[DATA]
  if global_batch % n or global_batch % jax.process_count():
    raise ValueError(
        f"{what}={global_batch} must be divisible by the {n} data-parallel devices and the "
        f"{jax.process_count()} processes.")


def state_shardings(abstract_state, mesh: Mesh, strategy: str = "data"):
  """Sharding for every leaf of the train state under `strategy` (config.mesh.strategy).

  'data': everything replicated (plain data parallelism).
  """
  if strategy != "data":
    raise ValueError(f"config.mesh.strategy={strategy!r} is not supported; use 'data'.")
  return jax.tree.map(lambda _: replicated(mesh), abstract_state)


def to_global(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Host-local numpy batch → one global array per field, sharded over the 'data' axis."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
