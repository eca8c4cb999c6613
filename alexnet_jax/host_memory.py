"""Host memory that XLA:CPU can reuse from step to step (`config.keep_host_memory`).

Each execution of a compiled step allocates one buffer for all its temporaries (66 MB for the
quick-mode ResNet-18 at batch 64, 350 MB for ResNet-50 at batch 8, 112 px) and frees it at
the end. glibc's malloc serves an allocation that size with a fresh `mmap` and returns it to
the kernel on `free`, so every step touches tens of thousands of new pages, each a page fault
and a page of zeroes written by the kernel (BENCHMARKS.md has the counts and their cost).
`keep_freed_memory` tells glibc to keep freed memory for the next allocation instead:

  M_MMAP_MAX = 0             large blocks come from the heap, not from their own mappings
  M_ARENA_MAX = 1            one heap for every thread (other threads' heaps map anything
                             over 64 MB separately whatever M_MMAP_MAX says)
  M_TRIM_THRESHOLD = 2³¹−1   freed memory at the top of the heap is not given back

The process then holds on to its peak memory until it exits (about 15% more resident memory
for ResNet-50), and threads share one malloc lock. It changes allocations made after the
call, in the whole process (PyTorch's too, in the benchmark). Only on Linux with glibc; a
no-op elsewhere.

It must come before JAX starts its backend: XLA's worker threads, started with it, take
heaps of their own on their first allocation, and those are still trimmed and mapped afresh
whatever is set later. `keep_freed_memory_on_cpu` applies it where
`will_compute_on_cpu` says, without starting the backend, that JAX will use the CPU; `main.py`,
`runtime.Runtime` and the benchmark call it before anything touches a device.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import sys
from importlib import metadata

from absl import logging

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
_SETTINGS = ((M_MMAP_MAX, 0), (M_ARENA_MAX, 1), (M_TRIM_THRESHOLD, 2**31 - 1))
_applied = False


def _mallopt():
  """glibc's `mallopt`, or None where the C library is not glibc."""
  if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
    return None
  try:
    return ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return None


def keep_freed_memory() -> bool:
  """Makes glibc's malloc keep freed memory for reuse (see the module docstring).

  Returns True once the settings are in force (also on later calls), False where they cannot
  be made (no glibc, or glibc refused one).
  """
  global _applied
  if _applied:
    return True
  mallopt = _mallopt()
  if mallopt is None:
    return False
  for param, value in _SETTINGS:
    if mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
      logging.warning("glibc refused mallopt(%d, %d); XLA's per-step buffers stay freshly mapped.", param, value)
      return False
  _applied = True
  return True


def will_compute_on_cpu() -> bool:
  """Whether JAX's default backend will be the CPU, decided without starting it: from
  `JAX_PLATFORMS` / `jax_platforms` where set, else from whether an accelerator plugin (CUDA,
  ROCm, TPU) is installed, since JAX then prefers it."""
  import jax  # noqa: PLC0415 (reading a config value starts nothing)
  platforms = jax.config.jax_platforms or os.environ.get("JAX_PLATFORMS", "")
  if platforms:
    return platforms.split(",")[0].strip().lower() == "cpu"
  try:
    plugins = list(metadata.entry_points(group="jax_plugins"))
  except Exception:  # noqa: BLE001 (a broken package index must not stop training)
    plugins = []
  return not plugins and importlib.util.find_spec("jax_plugins") is None and importlib.util.find_spec(
      "libtpu") is None


def keep_freed_memory_on_cpu() -> bool:
  """`keep_freed_memory()` where JAX will compute on the CPU (`will_compute_on_cpu`); call it
  before anything starts JAX's backend. Returns whether the settings are in force."""
  return will_compute_on_cpu() and keep_freed_memory()
