"""Data and model parallelism on 8 simulated CPU devices give the single-device result.

JAX fixes its device count at start-up, so the work runs in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (this file is also that subprocess's
script). The model is a small AlexNet with the paper's two towers; three SGD steps are
taken on fixed random batches under each layout and the losses and parameters compared.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 3
BATCH = 16
RES = 64


def _flat(params) -> dict[str, np.ndarray]:
  """Every parameter tensor, whole, by its path ('conv1/kernel', ...)."""
  from flax import traverse_util
  return {"/".join(k): np.asarray(v).ravel() for k, v in traverse_util.flatten_dict(params).items()}


def _worker() -> dict:
  """Runs in the 8-device subprocess; returns losses and parameters per layout."""
  import jax
  import numpy as np
  from jax.sharding import Mesh

  from alexnet_jax import metrics as metrics_lib
  from alexnet_jax import parallel, runtime
  from alexnet_jax.configs import alexnet as alexnet_cfg

  assert jax.device_count() == 8, jax.devices()
  config = alexnet_cfg.get_config("smoke,width=0.25")
  config.unlock()
  config.model.fc_dim = 128
  config.batch_size = BATCH

  class Info:  # what Runtime-free setup needs from the dataset
    num_classes = 10

  import functools
  from alexnet_jax import models, optim
  model = models.build_model(config.model, Info.num_classes, runtime.compute_dtype(config))
  schedule = optim.make_schedule(config.schedule, 100, 100)
  rng = np.random.default_rng(0)
  batches = [{"image": rng.normal(size=(BATCH, RES, RES, 3)).astype(np.float32) * 50,
              "label": rng.integers(0, 10, size=(BATCH,)).astype(np.int32)} for _ in range(STEPS)]

  def run(data: int, model_axis: int, strategy: str) -> dict:
    devices = np.asarray(jax.devices()[:data * model_axis]).reshape(data, model_axis)
    mesh = Mesh(devices, (parallel.DATA, parallel.MODEL))
    init = functools.partial(runtime.create_train_state, config, model, RES)
    key = jax.random.key(0)
    shardings = parallel.state_shardings(jax.eval_shape(init, key), mesh, strategy)
    data_sh = parallel.batch_sharding(mesh, strategy)
    repl = parallel.replicated(mesh)
    step = jax.jit(functools.partial(runtime.train_step, schedule=schedule, label_smoothing=0.0, aux_weight=0.3),
                   in_shardings=(shardings, data_sh, repl), out_shardings=(shardings, repl, repl),
                   donate_argnums=0)
    state = jax.jit(init, out_shardings=shardings)(key)
    before = _flat(jax.device_get(state.params))
    losses = []
    for b in batches:
      state, m, _ = step(state, parallel.to_global(b, data_sh), key)
      losses.append(metrics_lib.to_floats(m.compute())["loss"])
    kernel = state.params["conv2"]["kernel"]
    after = _flat(jax.device_get(state.params))
    return {
        "losses": losses,
        "params": {k: v.tolist() for k, v in after.items()},
        "unchanged": [k for k in after if np.array_equal(before[k], after[k])],
        "num_params": int(sum(v.size for v in after.values())),
        "split": parallel.describe(shardings),
        "conv2_shard_shape": list(kernel.sharding.shard_shape(kernel.shape)),
    }

  return {"single": run(1, 1, "data"), "data8": run(8, 1, "data"),
          "towers": run(4, 2, "towers"), "fc": run(4, 2, "fc")}


@pytest.fixture(scope="module")
def results() -> dict:
  from tests.conftest import subprocess_env  # not at the top: this file also runs as the worker script
  env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=8")
  proc = subprocess.run([sys.executable, __file__, "worker"], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_same(a: dict, b: dict, tol: float) -> None:
  np.testing.assert_allclose(a["losses"], b["losses"], rtol=tol, atol=tol)
  assert a["params"].keys() == b["params"].keys()
  for k in a["params"]:
    np.testing.assert_allclose(a["params"][k], b["params"][k], rtol=tol, atol=tol, err_msg=k)


def test_training_moves_the_parameters(results):
  # Guards the comparisons below against a step that does nothing: every tensor of every
  # layout changed, and the comparisons cover all of each tensor.
  for layout, r in results.items():
    assert all(np.isfinite(r["losses"])) and len(set(r["losses"])) == STEPS, layout
    assert r["unchanged"] == [], (layout, r["unchanged"])
    assert sum(len(v) for v in r["params"].values()) == r["num_params"], layout


def test_eight_devices_equal_one(results):
  _assert_same(results["data8"], results["single"], 1e-5)
  assert results["data8"]["split"] == {}  # 'data' replicates every parameter


def test_towers_split_equals_data_parallel(results):
  _assert_same(results["towers"], results["data8"], 1e-5)
  split = results["towers"]["split"]
  # Each tower's conv2 kernel (the grouped conv's output half) lives on one device of 'model'.
  assert results["towers"]["conv2_shard_shape"][-1] * 2 == results["single"]["conv2_shard_shape"][-1]
  for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
    assert f"params/{name}/kernel" in split, split
    assert f"params/{name}/bias" in split, split
  assert any(k.startswith("opt_state") and k.endswith("conv2/kernel") for k in split), split


def test_fc_split_equals_data_parallel(results):
  _assert_same(results["fc"], results["data8"], 1e-5)
  split = results["fc"]["split"]
  assert {k.split("/")[1] for k in split if k.startswith("params/")} == {"fc6", "fc7", "fc8"}, split


def test_bad_strategy_and_batch_are_clear_errors():
  import jax
  from jax.sharding import Mesh

  from alexnet_jax import parallel
  mesh = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
  with pytest.raises(ValueError, match="towers, fc"):
    parallel.state_shardings({"w": np.zeros(2)}, mesh, "pipeline")
  with pytest.raises(ValueError, match="strategy=towers or fc"):
    parallel.check_strategy("data", 2)
  with pytest.raises(ValueError, match="--coordinator"):
    parallel.distributed_args(None, 2, 0)
  with pytest.raises(ValueError, match="process_id=5 must be in 0..1"):
    parallel.distributed_args("127.0.0.1:1234", 2, 5)
  assert parallel.distributed_args(None, None, None)[1] == 1


def test_param_spec_keeps_indivisible_axes_replicated():
  from jax.sharding import PartitionSpec as P

  from alexnet_jax import parallel
  assert parallel.param_spec((5, 5, 48, 256), 2) == P(None, None, None, "model")
  assert parallel.param_spec((4096, 999), 2) == P()


def test_benchmarks_import_no_tensorflow():
  # The GPU machine has no TensorFlow: the benchmarks' modules load none (tests/test_gpu_bench.py runs them).
  from tests.conftest import subprocess_env
  code = ("import sys, experiments.benchmark as b, experiments.gpu_bench; "
          "print([m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules]); "
          "print(sorted(b.SPECS))")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                        env=subprocess_env())
  assert proc.returncode == 0, proc.stderr[-3000:]
  bad, names = proc.stdout.strip().splitlines()[-2:]
  assert bad == "[]", bad
  assert "alexnet" in names and "resnet50" in names


if __name__ == "__main__" and sys.argv[-1] == "worker":
  print(json.dumps(_worker()))
