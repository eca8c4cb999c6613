"""A quiet console (alexnet_jax/console.py): library chatter dropped, warnings and our own lines kept."""

import logging

from alexnet_jax import console


def _record(path: str, level: int, msg: str) -> logging.LogRecord:
  return logging.LogRecord("absl", level, path, 1, msg, None, None)


def test_filter_drops_chatter_and_keeps_warnings():
  f = console.LibraryChatterFilter()
  tfds = "/site-packages/tensorflow_datasets/core/reader.py"
  assert not f.filter(_record(tfds, logging.INFO, "Constructing tf.data.Dataset alexnet_jax_shapes for split train"))
  assert f.filter(_record(tfds, logging.INFO, "Generating dataset alexnet_jax_shapes"))
  assert f.filter(_record(tfds, logging.WARNING, "Constructing tf.data.Dataset: a warning stays"))
  assert not f.filter(_record("/site-packages/orbax/checkpoint/x.py", logging.INFO, "Saving"))
  assert f.filter(_record("/site-packages/orbax/checkpoint/x.py", logging.ERROR, "Saving failed"))
  assert f.filter(_record("/src/alexnet_jax/train.py", logging.INFO, "Constructing tf.data.Dataset"))


def test_a_malformed_record_passes():
  bad = logging.LogRecord("absl", logging.INFO, "/site-packages/orbax/x.py", 1, "%d items", ("x",), None)
  assert console.LibraryChatterFilter().filter(bad)


def test_quiet_sets_library_loggers_to_warning_and_installs_the_filter_once(monkeypatch):
  from absl import logging as absl_logging
  monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
  for name in console.QUIET_LOGGERS:
    monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
  handler = absl_logging.get_absl_handler()
  monkeypatch.setattr(handler, "filters", [f for f in handler.filters
                                           if not isinstance(f, console.LibraryChatterFilter)])
  monkeypatch.setattr(console, "_installed", False)
  console.quiet(import_tensorflow=False)
  console.quiet(import_tensorflow=False)
  import os
  assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
  assert all(logging.getLogger(n).level == logging.WARNING for n in console.QUIET_LOGGERS)
  assert sum(isinstance(f, console.LibraryChatterFilter) for f in handler.filters) == 1


def test_a_user_setting_wins(monkeypatch):
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
  console.quiet(import_tensorflow=False)
  import os
  assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
