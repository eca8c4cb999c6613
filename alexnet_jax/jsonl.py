"""A run's record files, metrics.jsonl and summary.json, with the standard library and `atomic`."""

from __future__ import annotations

import json
import os
from typing import Any

from alexnet_jax import atomic


def read(path: str) -> list[dict[str, Any]]:
  """The rows of a JSON-lines file; blank lines and a torn line (a run killed mid-write) are skipped."""
  rows: list[dict[str, Any]] = []
  if not os.path.exists(path):
    return rows
  with open(path) as f:
    for line in f:
      line = line.strip()
      if not line:
        continue
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


def write_summary(workdir: str, summary: dict[str, Any]) -> None:
  """Writes summary.json atomically (a reader never sees half a file)."""
  atomic.write_json(os.path.join(workdir, "summary.json"), summary, indent=2, sort_keys=True)


def read_summary(workdir: str) -> dict[str, Any] | None:
  """summary.json of a run (written when it stops), or None when it is absent or unreadable."""
  try:
    with open(os.path.join(workdir, "summary.json")) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None
