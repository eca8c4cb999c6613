"""Writing a file so that a reader never sees half of it: into `<path>.<pid>.tmp`, then `os.replace`.

A crash or an error while writing leaves the previous file (or none) in place and removes the
temporary one.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import IO, Any, Iterator


@contextlib.contextmanager
def write(path: str, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
  """`with write(path) as f:` writes `f` to a temporary file beside `path`, moved onto it on a clean exit."""
  tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"  # one per process: concurrent writers do not clash
  try:
    with open(tmp, mode, **open_kwargs) as f:
      yield f
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> None:
  with write(path) as f:
    f.write(text)


def write_json(path: str, value: Any, **dump_kwargs: Any) -> None:
  """`value` as JSON (json.dump's keyword arguments, e.g. indent) at `path`, atomically."""
  with write(path) as f:
    json.dump(value, f, **dump_kwargs)
