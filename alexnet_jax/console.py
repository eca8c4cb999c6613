"""A quiet console: library start-up notices and per-epoch chatter off, warnings and errors kept.

`quiet()` is called once by each command-line entry point before anything imports TensorFlow:

- TensorFlow's C++ INFO lines (`TF_CPP_MIN_LOG_LEVEL=1`; warnings and errors still show), and the
  oneDNN / CPU-feature notices it prints while loading, before its log level applies: the import
  runs with the process's stderr captured and everything else in it written back.
- JAX's probe for backends the machine does not have ("Unable to initialize backend 'tpu'"),
  matplotlib's font-cache notice and Orbax's per-save INFO lines: those loggers show WARNING and up.
- TFDS's INFO lines that repeat every epoch ("Constructing tf.data.Dataset ...", "Load dataset
  info from ..."): dropped by a filter on the absl handler; dataset generation still logs.

Environment variables the user sets win over these defaults.
"""

from __future__ import annotations

import logging as py_logging
import os
import re
import sys
import tempfile

from absl import logging

# Python loggers whose INFO lines are start-up or bookkeeping noise; WARNING and up still show.
QUIET_LOGGERS = ("jax._src.xla_bridge", "matplotlib.font_manager", "orbax")
# Libraries (by source path) and message starts whose INFO records the absl handler drops.
_DROPPED_INFO = (
    ("orbax", ""),
    ("tensorflow_datasets", "Constructing tf.data.Dataset"),
    ("tensorflow_datasets", "Creating a tf.data.Dataset"),
    ("tensorflow_datasets", "Load dataset info from"),
    ("tensorflow_datasets", "Reusing dataset"),
    ("tensorflow_datasets", "Fields info."),
    ("xla_bridge", "Unable to initialize backend"),
)
# Lines TensorFlow's shared libraries print while loading, before TF_CPP_MIN_LOG_LEVEL applies.
_TF_LOAD_NOTICES = re.compile(
    r"(All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    r"cpu_feature_guard|To enable the following instructions|rebuild TensorFlow with the appropriate)")


class LibraryChatterFilter(py_logging.Filter):
  """Drops INFO (and lower) records that `_DROPPED_INFO` names; every warning and error passes."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    if record.levelno >= py_logging.WARNING:
      return True
    path = record.pathname or ""
    try:
      message = record.getMessage()
    except Exception:  # a malformed record is not ours to judge
      return True
    return not any(lib in path and message.startswith(start) for lib, start in _DROPPED_INFO)


def _import_tensorflow_filtered() -> None:
  """Imports TensorFlow with fd 2 captured, then writes back all but its loading notices."""
  if "tensorflow" in sys.modules:
    return
  try:
    saved = os.dup(2)
  except OSError:  # no real stderr (embedded interpreter): nothing to filter
    import tensorflow  # noqa: F401
    return
  with tempfile.TemporaryFile(mode="w+b") as capture:
    sys.stderr.flush()
    os.dup2(capture.fileno(), 2)
    try:
      import tensorflow  # noqa: F401
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
              if not _TF_LOAD_NOTICES.search(line)]
      if kept:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


_installed = False


def quiet(import_tensorflow: bool = True) -> None:
  """Sets the quiet defaults above (once per process); call before TensorFlow is imported."""
  global _installed
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  for name in QUIET_LOGGERS:
    py_logging.getLogger(name).setLevel(py_logging.WARNING)
  if not _installed:
    logging.get_absl_handler().addFilter(LibraryChatterFilter())
    _installed = True
  if import_tensorflow:
    try:
      _import_tensorflow_filtered()
    except ImportError:  # a prepared store trains without TensorFlow
      pass
