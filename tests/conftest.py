"""Test setup: everything runs on CPU; TensorFlow stays quiet and off any GPU; nothing is
written outside one temporary folder per test session."""

import atexit
import os
import pathlib
import shutil
import tempfile
from typing import Any, NamedTuple

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Hermetic: the embedded dataset, any TFDS preparation and prepared image stores land in the
# session's folder, not in the user's ~/tensorflow_datasets, ~/alexnet_jax_data or ~/.cache. Subprocesses (main.py runs) inherit it, and share a
# persistent XLA compilation cache, which halves the CPU time of a repeated tiny run.
SESSION_DIR = pathlib.Path(tempfile.mkdtemp(prefix="alexnet_jax_tests_"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
os.environ["TFDS_DATA_DIR"] = str(SESSION_DIR / "tensorflow_datasets")
os.environ["ALEXNET_JAX_DATA"] = str(SESSION_DIR / "stores")
os.environ["XDG_CACHE_HOME"] = str(SESSION_DIR / "cache")  # image-folder screening results
os.environ["JAX_COMPILATION_CACHE_DIR"] = str(SESSION_DIR / "jax_cache")
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

# Importing torch (the equivalence tests' peer) after TensorFlow crashes in triton's start-up
# with these wheels; importing it first, when it is installed, avoids that.
try:  # noqa: SIM105
  import torch  # noqa: E402,F401
  import torchvision  # noqa: E402,F401
except ImportError:
  pass

import pytest  # noqa: E402

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
  """`tiny_train_config()` trained once per test session, in-process, for every test that only
  needs a finished run with a checkpoint. Tests must not write into its workdir (copy it)."""
  from alexnet_jax import train
  wd = tmp_path_factory.mktemp("trained") / "run"
  state, summary = train.train_and_evaluate(tiny_train_config(), str(wd))
  return TrainedRun(wd, state, summary)
