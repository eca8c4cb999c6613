"""host_memory: glibc keeps freed memory, so a second large buffer costs no page faults."""

import json
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
