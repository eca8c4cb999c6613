"""The run's folder: writable check, single-writer lock, and the saved config."""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any

from absl import logging
from flax import traverse_util

from alexnet_jax import atomic
from alexnet_jax.errors import UserError


class WorkdirError(UserError):
  """A workdir that cannot be used (unwritable, in use by another run)."""


def prepare(workdir: str) -> None:
  """Creates the workdir and proves it is writable, with a message that says what to do."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(
        f"The workdir {workdir!r} is not writable ({e.strerror}). Choose another with "
        f"--workdir=<folder you can write>, or fix its permissions.") from None


def refuse_files(folders: dict[str, str]) -> None:
  """Raises WorkdirError when a folder the run will create or read ({what: path}) is a file or
  lies under one (makedirs would end in FileExistsError or NotADirectoryError)."""
  for what, path in folders.items():
    if not path:
      continue
    full = nearest = os.path.abspath(os.path.expanduser(path))
    while not os.path.exists(nearest) and os.path.dirname(nearest) != nearest:
      nearest = os.path.dirname(nearest)
    if not os.path.isdir(nearest):
      inside = "" if nearest == full else f" (it lies under the file {nearest})"
      raise WorkdirError(f"{what}={path} names a file, not a folder{inside}. Give a folder path.")


class Lock:
  """An exclusive advisory lock on <workdir>/.lock, held for the life of the run.

  The kernel drops the lock when the process dies (even by SIGKILL), so a crashed run
  never leaves the workdir locked.
  """

  def __init__(self, workdir: str):
    self._path = os.path.join(workdir, ".lock")
    self._fd: int | None = None

  def acquire(self) -> "Lock":
    fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.read(fd, 64).decode(errors="replace").strip()
      os.close(fd)
      raise WorkdirError(
          f"Another run is using this workdir ({os.path.dirname(self._path)}; process {holder or '?'}). "
          f"Wait for it to finish, stop it, or pass a different --workdir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def save_config(workdir: str, config) -> dict[str, tuple[Any, Any]]:
  """Writes config.json; returns {field: (old, new)} for fields that changed since the last run."""
  path = os.path.join(workdir, "config.json")
  new = json.loads(config.to_json_best_effort())
  changed: dict[str, tuple[Any, Any]] = {}
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
      fo = traverse_util.flatten_dict(old, sep=".")
      fn = traverse_util.flatten_dict(new, sep=".")
      for key in sorted(set(fo) | set(fn)):
        if fo.get(key) != fn.get(key):
          changed[key] = (fo.get(key), fn.get(key))
    except (OSError, json.JSONDecodeError):
      logging.warning("Could not read the previous %s; overwriting it.", path)
  atomic.write_json(path, new, indent=2, sort_keys=True)
  return changed

