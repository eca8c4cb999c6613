"""Reading JSON-lines files (metrics.jsonl) with nothing but the standard library."""

from __future__ import annotations

import json
import os
from typing import Any


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
