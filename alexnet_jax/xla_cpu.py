"""XLA:CPU compile options for the jitted train and evaluation steps (`config.cpu_onednn`).

XLA:CPU runs a convolution or matrix product with YNNPACK where YNNPACK takes it, and with
Eigen otherwise: convolutions with at most 16 channels in and out (the quick-mode ResNet-18's
first stages), products with a transposed operand (the kernel gradients of 1×1 and
`cpu_gradients._patch_conv` layers). With `xla_cpu_experimental_onednn_custom_call` those go
to oneDNN (the library PyTorch's CPU convolutions use) instead; BENCHMARKS.md has what it
changes per model. Same functions; results differ from Eigen's by float rounding. The option
applies per compiled program, not to the process.

XLA cannot write a program with oneDNN calls to JAX's persistent compilation cache (it fails
with `std::bad_alloc` and JAX warns on every compile), so where that cache is configured
(`jax_compilation_cache_dir`, `JAX_COMPILATION_CACHE_DIR`) the steps compile without oneDNN
and keep being cached.
"""

from __future__ import annotations

from typing import Optional

import jax

ONEDNN = {"xla_cpu_experimental_onednn_custom_call": True}


def persistent_cache() -> bool:
  """Whether JAX writes compiled programs to a persistent compilation cache."""
  return bool(jax.config.jax_compilation_cache_dir)


def compiler_options(onednn: bool) -> Optional[dict]:
  """`jax.jit(..., compiler_options=...)` for a step: oneDNN on CPU when `onednn` and no
  persistent compilation cache is configured, else None."""
  if onednn and jax.default_backend() == "cpu" and not persistent_cache():
    return dict(ONEDNN)
  return None
