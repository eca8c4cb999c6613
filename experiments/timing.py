"""Timed rounds with the peers interleaved, their statistics, and the machine block of a benchmark record.

A round runs each peer once (a few steps each, blocking at the end of its turn); the peer that goes
first alternates from round to round, so neither always follows the other and both see the same
background load. Every round's raw time is kept. A ratio is computed per round (the two peers of one
round ran back to back), and a claim "at least 1.0×" holds only when the smallest of those per-round
ratios is at least 1.0.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

from alexnet_jax import atomic

MIN_ROUNDS = 5


def interleaved_rounds(peers: dict[str, Callable[[int], Any]], rounds: int, steps: int = 1, warmup: int = 1,
                       before: dict[str, Callable[[], Any]] | None = None) -> dict[str, list[float]]:
  """{peer: [seconds of each round]}: `warmup` untimed turns each, then `rounds` rounds in which every
  peer runs `steps` steps (`peer(steps)` must block until they are done); the first alternates.
  `before[peer]()`, where given, runs untimed right before each of that peer's turns."""
  if rounds < 1 or steps < 1:
    raise ValueError(f"rounds and steps must be positive (got {rounds}, {steps})")
  before = before or {}
  for _ in range(warmup):
    for k, run in peers.items():
      before.get(k, lambda: None)()
      run(steps)
  names = list(peers)
  times: dict[str, list[float]] = {k: [] for k in names}
  for r in range(rounds):
    for k in (names if r % 2 == 0 else names[::-1]):
      before.get(k, lambda: None)()
      t = time.perf_counter()
      peers[k](steps)
      times[k].append(time.perf_counter() - t)
  return times


def spread(values: list[float]) -> dict[str, float]:
  return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def rate_stats(round_s: list[float], items_per_round: float) -> dict[str, Any]:
  """Raw round times and the rate (items/s) of each round, with median, min and max."""
  rates = [items_per_round / t for t in round_s]
  return {"round_s": list(round_s), "rate": rates, **spread(rates)}


def ratio_stats(ours_s: list[float], theirs_s: list[float]) -> dict[str, Any]:
  """Per-round speed ratios (their time / our time: above 1 is faster than them), median, min, max,
  and whether the lower end is at least 1.0."""
  ratios = [b / a for a, b in zip(ours_s, theirs_s)]
  return {"per_round": ratios, **spread(ratios), "at_least_1": min(ratios) >= 1.0}


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or "unknown CPU"


def _host_memory_bytes() -> int | None:
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return None


def _version_file(mod: str) -> str | None:
  """`__version__` as `mod`/version.py spells it (torch and torchvision write theirs there, with the
  build's tag such as +cu130), read as text: importing PyTorch only for its version takes seconds."""
  import importlib.util
  import re
  spec = importlib.util.find_spec(mod)
  if spec is None or not spec.submodule_search_locations:
    return None
  for folder in spec.submodule_search_locations:
    try:
      with open(os.path.join(folder, "version.py")) as f:
        found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
    except OSError:
      continue
    if found:
      return found.group(1)
  return None


def versions() -> dict[str, str]:
  out = {"python": platform.python_version()}
  for mod in ("jax", "jaxlib", "flax", "optax", "torch", "torchvision"):
    try:
      text = None if mod in sys.modules or not mod.startswith("torch") else _version_file(mod)
      out[mod] = text or __import__(mod).__version__
    except ImportError:
      out[mod] = "not installed"
  return out


def machine(module: str, argv: list[str] | None = None) -> dict[str, Any]:
  """Host, device, date, versions, the exact command and the load average at the start of a run."""
  import jax
  dev = jax.devices()[0]
  try:
    device_memory = (dev.memory_stats() or {}).get("bytes_limit")
  except (NotImplementedError, RuntimeError):
    device_memory = None
  argv = sys.argv[1:] if argv is None else list(argv)
  return {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
          "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
          "host_memory_bytes": _host_memory_bytes(), "device": f"{dev.platform}:{dev.device_kind}",
          "device_kind": dev.device_kind, "device_count": jax.device_count(), "device_memory_bytes": device_memory,
          "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
          "versions": versions(), "command": " ".join(["python -m", module, *argv]),
          "load_average_at_start": list(os.getloadavg())}


def write_record(path: str, record: dict[str, Any]) -> str:
  """Writes a benchmark record as JSON, whole or not at all."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  atomic.write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
  return path


def read_record(path: str) -> dict[str, Any]:
  with open(path) as f:
    return json.load(f)
