"""clu metric collections for training and evaluation, and a JSON-lines metric writer."""

# No `from __future__ import annotations`: clu reads the metric classes from the annotations.

import json
import os
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import metrics

from alexnet_jax import jsonl


def _import_writers():
  """clu's metric writers; without TensorFlow, all of them but TensorBoard's (see default_writer)."""
  import sys
  import types
  try:
    from clu import metric_writers as writers
    return writers, True
  except ImportError:
    for name in [n for n in sys.modules if n.startswith("clu.metric_writers")]:
      del sys.modules[name]
    stub = types.ModuleType("clu.metric_writers.summary_writer")
    stub.SummaryWriter = None  # the one clu writer that needs TensorFlow
    sys.modules[stub.__name__] = stub
    from clu import metric_writers as writers
    return writers, False


metric_writers, HAVE_TENSORBOARD = _import_writers()


def default_writer(workdir: str, *, just_logging: bool, asynchronous: bool) -> metric_writers.MetricWriter:
  """clu's default writer (console + TensorBoard); the console alone, with one warning, without TensorFlow."""
  if HAVE_TENSORBOARD or just_logging:
    return metric_writers.create_default_writer(workdir, just_logging=just_logging, asynchronous=asynchronous)
  logging.warning("TensorBoard's writer needs TensorFlow, which cannot be imported; metrics go to the "
                  "console and metrics.jsonl only.")
  writer = metric_writers.LoggingWriter()
  return metric_writers.AsyncWriter(writer) if asynchronous else writer


def topk_correct(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
  """1.0 where the label is among the k highest logits (k clipped to the class count)."""
  k = min(k, logits.shape[-1])
  _, idx = jax.lax.top_k(logits, k)
  return jnp.any(idx == labels[:, None], axis=-1).astype(jnp.float32)


@flax.struct.dataclass
class TrainMetrics(metrics.Collection):
  loss: metrics.Average.from_output("loss")
  top1: metrics.Average.from_output("top1")
  top5: metrics.Average.from_output("top5")
  grad_norm: metrics.Average.from_output("grad_norm")
  learning_rate: metrics.LastValue.from_output("learning_rate")


@flax.struct.dataclass
class EvalMetrics(metrics.Collection):
  loss: metrics.Average.from_output("loss")
  top1: metrics.Average.from_output("top1")
  top5: metrics.Average.from_output("top5")


def to_floats(values: Mapping[str, Any]) -> dict[str, float]:
  return {k: float(np.asarray(v)) for k, v in values.items()}


class JsonlWriter(metric_writers.MetricWriter):
  """Appends one JSON object per `write_scalars` call: {"step": s, "<name>": value, ...}.

  Tools read `metrics.jsonl` without TensorBoard. On resume the writer first drops lines
  logged after the restored step (they belong to work that was lost with the process),
  so the file always describes one consistent history.
  """

  def __init__(self, path: str, resume_step: int | None = None):
    self._path = path
    if resume_step is not None and os.path.exists(path):
      kept = [row for row in jsonl.read(path) if row.get("step", 0) <= resume_step]
      tmp = path + ".tmp"
      with open(tmp, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in kept)
      os.replace(tmp, path)
    self._file = open(path, "a", buffering=1)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    row = {"step": int(step), **to_floats(scalars)}
    self._file.write(json.dumps(row) + "\n")

  def write_summaries(self, step, values, metadata=None):
    pass

  def write_images(self, step, images):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_texts(self, step, texts):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass

  def write_hparams(self, hparams):
    pass

  def flush(self):
    self._file.flush()

  def close(self):
    self._file.close()

