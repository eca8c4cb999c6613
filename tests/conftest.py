"""Test setup: everything runs on CPU; TensorFlow stays quiet and off any GPU; nothing is
written outside one temporary folder per test session."""

import atexit
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable, NamedTuple

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Tests compile many small programs and run each a few steps: with LLVM's cheap settings XLA:CPU
# compiles several times faster and the steps run about as fast (test_runtime.py and
# test_train.py together took 113 s instead of 196 s on 2 idle cores).
# Numerics are IEEE either way; child runs get the same settings (subprocess_env()).
CHEAP_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), CHEAP_XLA_FLAGS]))

# Hermetic: the embedded dataset, any TFDS preparation and prepared image stores land in the
# process's folder, not in the user's ~/tensorflow_datasets, ~/alexnet_jax_data or ~/.cache.
# Subprocesses (main.py runs) inherit it.
SESSION_DIR = pathlib.Path(tempfile.mkdtemp(prefix="alexnet_jax_tests_"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
os.environ["TFDS_DATA_DIR"] = str(SESSION_DIR / "tensorflow_datasets")
os.environ["ALEXNET_JAX_DATA"] = str(SESSION_DIR / "stores")
os.environ["XDG_CACHE_HOME"] = str(SESSION_DIR / "cache")  # image-folder screening results

# One persistent XLA compilation cache for the whole test run, every compile in it however short:
# the pytest-xdist workers and all their child processes (main.py runs) read what any of them
# compiled, and a step re-jitted in-process (each train_and_evaluate builds its own) is read
# back instead of compiled again. The process that makes the folder (pytest's main process)
# removes it at exit; workers, which start with its environment, reuse it.
_SHARED_ENV = "ALEXNET_JAX_TESTS_SHARED_DIR"
if os.environ.get("PYTEST_XDIST_WORKER") and os.path.isdir(os.environ.get(_SHARED_ENV, "")):
  SHARED_DIR = pathlib.Path(os.environ[_SHARED_ENV])
else:
  SHARED_DIR = pathlib.Path(tempfile.mkdtemp(prefix="alexnet_jax_tests_shared_"))
  os.environ[_SHARED_ENV] = str(SHARED_DIR)
  atexit.register(shutil.rmtree, SHARED_DIR, ignore_errors=True)
JAX_CACHE = {"JAX_COMPILATION_CACHE_DIR": str(SHARED_DIR / "jax_cache"),
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
os.environ.update(JAX_CACHE)

# Libraries' own temporary folders go inside the session folder too, so they go with it: TFDS makes
# an empty `tmp…tfds` folder in the system temp folder whenever a builder is made for data not yet
# prepared, and never removes it. Workers and child runs inherit TMPDIR.
_TMP = SESSION_DIR / "tmp"
_TMP.mkdir()
os.environ["TMPDIR"] = str(_TMP)
tempfile.tempdir = str(_TMP)

# Importing torch (the equivalence tests' peer) after TensorFlow crashes in triton's start-up
# with these wheels; importing it first, when it is installed, avoids that.
try:  # noqa: SIM105
  import torch  # noqa: E402,F401
  import torchvision  # noqa: E402,F401
except ImportError:
  pass

import jax  # noqa: E402
import pytest  # noqa: E402

# The same settings in-process, in case JAX was imported (and read its environment) before this file.
jax.config.update("jax_compilation_cache_dir", JAX_CACHE["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """The real image archives kept beside the repository for CI; skips the test when absent."""
  if not SHARED_DATA.is_dir():
    pytest.skip("real-image archives (../shared/data) are not present")
  return SHARED_DATA


# ----------------------------------------------------------------------------- one trained run

TRAINED_STEPS = 150
TRAINED_LOG_EVERY = 25


def tiny_train_config(**overrides: Any):
  """A quarter-width quick-mode AlexNet at 64 px on 2048 embedded images (dropout off, so
  `TRAINED_STEPS` steps clearly learn); `overrides` are dotted config fields."""
  from alexnet_jax.configs import alexnet
  c = alexnet.get_config("smoke,dropout=0.0")
  c.unlock()
  c.embedded_train_size, c.embedded_eval_size = 2048, 256
  c.model.width, c.batch_size, c.eval_batch_size = 0.25, 32, 64
  c.num_train_steps, c.log_every_steps, c.eval_every_epochs = TRAINED_STEPS, TRAINED_LOG_EVERY, 1000.0
  c.async_checkpoints = False
  c.update_from_flattened_dict(dict(overrides))  # 'input.store_size' → c.input.store_size
  c.lock()
  return c


# `tiny_train_config()` on the command line, for tests that run main.py on the trained run.
TRAINED_CLI = ["--config=configs/alexnet.py:smoke,dropout=0.0", "--config.embedded_train_size=2048",
               "--config.embedded_eval_size=256", "--config.model.width=0.25", "--config.batch_size=32",
               "--config.eval_batch_size=64", f"--config.num_train_steps={TRAINED_STEPS}",
               f"--config.log_every_steps={TRAINED_LOG_EVERY}", "--config.eval_every_epochs=1000.0"]


class TrainedRun(NamedTuple):
  workdir: pathlib.Path
  state: Any  # runtime.TrainState after the last step
  summary: dict


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
  """`tiny_train_config()` trained once per test run, in-process, for every test that only needs a
  finished run with a checkpoint. Tests must not write into its workdir (copy it).

  Under pytest-xdist the workers share one workdir: the first to ask trains it (holding a file
  lock), the others wait and restore its last checkpoint and summary instead of training again.
  """
  import fcntl
  from alexnet_jax import jsonl
  from alexnet_jax import runtime
  from alexnet_jax import train
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # the run's folder, above each worker's own
  wd = root / "trained_run"
  config = tiny_train_config()
  with open(root / "trained_run.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    summary = jsonl.read_summary(str(wd))
    if not (summary and summary.get("done")):
      state, summary = train.train_and_evaluate(config, str(wd))
      return TrainedRun(wd, state, summary)
  _, state, _ = runtime.restore_for_inference(config, str(wd))
  return TrainedRun(wd, state, summary)


# ----------------------------------------------------------------------------- shared builders


def eval_config(data: str = "embedded", image_size: int = 32, resize: int = 36, **eval_fields: Any):
  """A quick-mode AlexNet config for evaluation tests: `data` (embedded or an image folder), small
  crops, an eval batch of 8, and `eval_fields` set on config.eval."""
  from alexnet_jax.configs import alexnet
  c = alexnet.get_config(f"smoke,data={data}" if data != "embedded" else "smoke")
  c.input.image_size = image_size
  c.input.resize_size = resize
  c.eval_batch_size = 8
  for k, v in eval_fields.items():
    c.eval[k] = v
  return c


def write_image_folder(root, split_counts: dict[str, dict[str, int]], *,
                       names: Callable[[int], str] | None = None,
                       pixels: Callable[[int, str], Any] | None = None) -> str:
  """root/<split>/<class>/<file> for {split: {class: count}}, files numbered k = 0, 1, ... across the
  folder in that order. `pixels(k, class)` gives image k as a uint8 [H, W, 3] array (default: a
  solid grey level and a height that vary with k); `names(k)` its file name (default img<k>.jpg;
  the extension picks the format). Returns root."""
  from PIL import Image
  import numpy as np
  k = 0
  for split, counts in split_counts.items():
    for cls, n in counts.items():
      os.makedirs(os.path.join(root, split, cls), exist_ok=True)
      for _ in range(n):
        name = names(k) if names else f"img{k:03d}.jpg"
        image = pixels(k, cls) if pixels else np.full((20 + k % 7, 24, 3), 10 * k % 250, np.uint8)
        Image.fromarray(image).save(os.path.join(root, split, cls, name), quality=90)
        k += 1
  return str(root)


def imagenette_slice(shared_data: pathlib.Path, dest: pathlib.Path, train: int, val: int) -> pathlib.Path:
  """The first `train` / `val` files of each class of the real Imagenette archive, unpacked under
  `dest` (<dest>/imagenette/{train,val}/<wnid>/...); skips the test when the archive is absent."""
  import tarfile
  archive = shared_data / "imagenette-128.tar"
  if not archive.exists():
    pytest.skip("imagenette-128.tar not present")
  counts: dict[tuple[str, str], int] = {}
  with tarfile.open(archive) as tar:
    for member in tar:
      parts = member.name.split("/")
      if not member.isfile() or len(parts) != 4:
        continue
      key = (parts[1], parts[2])
      if counts.get(key, 0) < (train if parts[1] == "train" else val):
        counts[key] = counts.get(key, 0) + 1
        tar.extract(member, dest, filter="data")
  return dest / "imagenette"


def subprocess_env(**overrides: str) -> dict[str, str]:
  """The environment of a test's child process: CPU only, TensorFlow quiet, the repository
  importable, one CPU device (unless `XLA_FLAGS` is overridden), the tests' cheap compiler
  settings and no multi-host settings from the parent; `overrides` last."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
  for k in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    env.pop(k, None)
  env.update(overrides)
  env["XLA_FLAGS"] = " ".join(filter(None, [overrides.get("XLA_FLAGS", ""), CHEAP_XLA_FLAGS]))
  return env


# The slowest files, slowest first (by their total time in a full run on 2 cores). pytest-xdist
# hands whole files to the workers in collection order (pytest.ini turns off its reordering by test
# count), so the long ones start first, the short ones fill in at the end, and both workers finish
# together. test_faults.py comes after others: it waits for the reference run that
# test_faults_signals.py builds.
SLOW_FILES_FIRST = (
    "test_faults_signals.py", "test_neighbours.py", "test_resnet.py", "test_runtime.py", "test_faults.py",
    "test_multihost.py", "test_gpu_session.py", "test_store.py", "test_readme_commands.py", "test_train.py",
    "test_gpu_bench.py", "test_recipes.py", "test_torch_convert_a.py", "test_augment_parity.py",
    "test_torch_convert_resnet.py", "test_parallel.py", "test_sharp_device_augment.py", "test_benchmark.py",
    "test_models_lineage_a.py", "test_models_cpu_gradients.py", "test_cifar_cnn.py", "test_sharp_layers.py",
    "test_paper_pins.py",
)


def pytest_collection_modifyitems(config, items):
  rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order
