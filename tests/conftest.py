"""Test setup: everything runs on CPU; TensorFlow stays quiet and off any GPU."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Prepared image stores (alexnet_jax/data/store.py) go to a scratch folder, not the user's data folder.
os.environ.setdefault("ALEXNET_JAX_DATA", os.path.join(os.environ.get("TMPDIR", "/tmp"), "alexnet_jax_test_stores"))

import pathlib  # noqa: E402

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
