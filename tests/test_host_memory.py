"""host_memory: glibc keeps freed memory, so a second large buffer costs no page faults."""

import json
import os
import subprocess
import sys

import pytest

from alexnet_jax import host_memory

# Allocates, writes and frees a 64 MB buffer with malloc (as XLA:CPU does its temporaries),
# twice, and counts the page faults of the second time. In a subprocess: the setting is
# process-wide.
_PROBE = """
import ctypes, json, resource, sys
from alexnet_jax import host_memory
applied = host_memory.keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 * 2**20
for _ in range(2):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  buf = libc.malloc(size)
  ctypes.memset(buf, 1, size)
  touched = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
  libc.free(buf)
print(json.dumps({"applied": applied, "again": host_memory.keep_freed_memory() if applied else None,
                  "faults": touched}))
"""


def _probe(mode: str) -> dict:
  out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(host_memory._mallopt() is None, reason="needs glibc")
def test_kept_memory_is_reused_without_page_faults():
  fresh, kept = _probe("fresh"), _probe("keep")
  assert kept["applied"] and kept["again"]
  pages = 64 * 2**20 // 4096
  assert fresh["faults"] > pages // 2   # a fresh mapping: a fault per page written
  assert kept["faults"] < pages // 20   # the freed heap memory, reused


def test_no_glibc_is_a_no_op(monkeypatch):
  monkeypatch.setattr(host_memory, "_applied", False)
  monkeypatch.setattr(host_memory, "_mallopt", lambda: None)
  assert host_memory.keep_freed_memory() is False


# An XLA:CPU program whose temporaries (two 32 MB arrays, stored by barriers) are allocated
# and freed on every call: the fewest page faults of calls 3-12 (the kept heap settles within
# a few calls; without the setting every call maps its buffers afresh), with the setting made
# before JAX starts its backend, or not at all.
_XLA_PROBE = """
import json, resource, sys
from alexnet_jax import host_memory
if sys.argv[1] == "keep":
  host_memory.keep_freed_memory()
import jax, jax.numpy as jnp
barrier = jax.lax.optimization_barrier
f = jax.jit(lambda x: jnp.sum(barrier(x * 2.0)) + jnp.sum(barrier(x + 1.0)))
x = jnp.ones((1 << 23,))
faults = []
for _ in range(12):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"faults": min(faults[2:])}))
"""


@pytest.mark.skipif(host_memory._mallopt() is None, reason="needs glibc")
def test_xla_temporaries_reuse_memory_when_kept_before_the_backend_starts():
  def faults(mode):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", _XLA_PROBE, mode], capture_output=True, text=True, check=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["faults"]
  fresh, kept = faults("fresh"), faults("keep")
  assert fresh > 4096            # 32 MB buffers mapped afresh: thousands of pages each call
  assert kept < fresh // 20      # reused


@pytest.mark.parametrize("platforms,cpu", [("cpu", True), ("cuda", False), ("tpu,cpu", False), ("CPU", True)])
def test_will_compute_on_cpu_reads_the_platform_setting(platforms, cpu):
  import jax
  saved = jax.config.jax_platforms
  jax.config.update("jax_platforms", platforms)
  try:
    assert host_memory.will_compute_on_cpu() is cpu
  finally:
    jax.config.update("jax_platforms", saved)


def test_will_compute_on_cpu_without_a_setting_looks_for_accelerator_plugins(monkeypatch):
  import jax
  saved = jax.config.jax_platforms
  jax.config.update("jax_platforms", None)
  monkeypatch.delenv("JAX_PLATFORMS", raising=False)
  try:
    monkeypatch.setattr(host_memory.metadata, "entry_points", lambda group: [])
    monkeypatch.setattr(host_memory.importlib.util, "find_spec", lambda name: None)
    assert host_memory.will_compute_on_cpu()
    monkeypatch.setattr(host_memory.metadata, "entry_points", lambda group: ["xla_cuda13"])
    assert not host_memory.will_compute_on_cpu()
  finally:
    jax.config.update("jax_platforms", saved)


def test_keep_freed_memory_on_cpu_only_where_jax_computes_on_the_cpu(monkeypatch):
  calls = []
  monkeypatch.setattr(host_memory, "keep_freed_memory", lambda: calls.append(1) or True)
  monkeypatch.setattr(host_memory, "will_compute_on_cpu", lambda: False)
  assert host_memory.keep_freed_memory_on_cpu() is False and not calls
  monkeypatch.setattr(host_memory, "will_compute_on_cpu", lambda: True)
  assert host_memory.keep_freed_memory_on_cpu() is True and calls == [1]
