"""xla_cpu: the train and evaluation steps compile with oneDNN for what YNNPACK leaves, with the same values."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax import xla_cpu

# The session's cache was opened before the fixture turns it off; its failed writes only warn.
pytestmark = pytest.mark.filterwarnings("ignore:Error writing persistent compilation cache entry")


@pytest.fixture
def no_persistent_cache():
  """The tests share a persistent compilation cache (conftest), which rules oneDNN out."""
  saved = jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache
  jax.config.update("jax_compilation_cache_dir", None)
  jax.config.update("jax_enable_compilation_cache", False)
  yield
  jax.config.update("jax_compilation_cache_dir", saved[0])
  jax.config.update("jax_enable_compilation_cache", saved[1])


def test_options_only_on_cpu_when_asked_and_without_a_persistent_cache(no_persistent_cache):
  assert xla_cpu.compiler_options(False) is None
  assert xla_cpu.compiler_options(True) == xla_cpu.ONEDNN  # the tests run on CPU
  assert xla_cpu.compiler_options(True) is not xla_cpu.ONEDNN  # a copy: jit may keep it
  jax.config.update("jax_compilation_cache_dir", "/nonexistent/cache")
  assert xla_cpu.persistent_cache() and xla_cpu.compiler_options(True) is None


def test_few_channel_convolution_runs_on_onednn_with_the_same_values(no_persistent_cache):
  # 8 channels in and out: YNNPACK does not take it, so without the option Eigen runs it.
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(4, 16, 16, 8)).astype(np.float32))
  k = jnp.asarray(rng.normal(size=(3, 3, 8, 8)).astype(np.float32))
  conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",  # noqa: E731
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  plain = jax.jit(conv).lower(x, k).compile()
  onednn = jax.jit(conv, compiler_options=xla_cpu.compiler_options(True)).lower(x, k).compile()
  assert "__onednn$" not in plain.as_text()
  assert "__onednn$convolution" in onednn.as_text()
  want = plain(x, k)
  np.testing.assert_allclose(onednn(x, k), want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


def test_runtime_compiles_both_steps_with_onednn_by_default(no_persistent_cache):
  from alexnet_jax.configs import resnet
  from alexnet_jax.eval.run import Evaluator
  from alexnet_jax.runtime import Runtime
  config = resnet.get_config("depth=18,smoke")  # 8-channel first stages: not YNNPACK's
  assert config.cpu_onednn
  rt = Runtime(config, info=types.SimpleNamespace(num_classes=10, num_train=640))
  state = rt.init_state()
  n, size = config.batch_size, config.input.image_size
  batch = {"image": jnp.zeros((n, size, size, 3)), "label": jnp.zeros((n,), jnp.int32), "mask": jnp.ones((n,))}
  assert "__onednn$" in rt.train_step.lower(state, batch, rt.base_key).compile().as_text()
  views = {**batch, "image": batch["image"][:, None]}  # one view per image
  assert "__onednn$" in Evaluator(rt).step.lower(state, views).compile().as_text()
