"""Test setup: everything runs on CPU; TensorFlow stays quiet and off any GPU; nothing is
written outside one temporary folder per test session."""

import atexit
import os
import pathlib
import shutil
import tempfile

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
