"""Training metrics (a clu collection) and the metric writers: clu's default one and metrics.jsonl.

Evaluation is scored on the host (`eval/scoring.Tally`). clu's writers are imported on first use
(`clu_writers`), so importing this module loads neither TensorFlow nor TensorBoard.
"""

# No `from __future__ import annotations`: clu reads the metric classes from the annotations.

import functools
import json
import os
import sys
import types
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import metrics

from alexnet_jax import atomic
from alexnet_jax import jsonl


@functools.cache
def clu_writers() -> tuple[types.ModuleType, bool]:
  """(clu.metric_writers, whether TensorBoard's writer is there), imported on first use.

  clu imports TensorFlow for its TensorBoard writer alone. Where TensorFlow cannot be imported
  (training from a prepared store needs none), that one writer is left out: its module is
  registered as an empty stand-in before clu's writers load, so the others still work.
  """
  try:
    from clu import metric_writers
    return metric_writers, True
  except ImportError:
    for name in [n for n in sys.modules if n.startswith("clu.metric_writers")]:
      del sys.modules[name]
    stand_in = types.ModuleType("clu.metric_writers.summary_writer")
    stand_in.SummaryWriter = None
    sys.modules[stand_in.__name__] = stand_in
    from clu import metric_writers
    return metric_writers, False


def default_writer(workdir: str, *, just_logging: bool, asynchronous: bool):
  """clu's default writer (console + TensorBoard); the console alone, with one warning, without TensorFlow."""
  writers, have_tensorboard = clu_writers()
  if have_tensorboard or just_logging:
    return writers.create_default_writer(workdir, just_logging=just_logging, asynchronous=asynchronous)
  logging.warning("TensorBoard's writer needs TensorFlow, which cannot be imported; metrics go to the "
                  "console and metrics.jsonl only.")
  writer = writers.LoggingWriter()
  return writers.AsyncWriter(writer) if asynchronous else writer


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


def to_floats(values: Mapping[str, Any]) -> dict[str, float]:
  return {k: float(np.asarray(v)) for k, v in values.items()}


class JsonlWriter:
  """A clu metric writer (its interface, by duck typing) that appends one JSON object per
  `write_scalars` call: {"step": s, "<name>": value, ...}.

  Tools read `metrics.jsonl` without TensorBoard. On resume the writer first drops lines
  logged after the restored step (they belong to work that was lost with the process),
  so the file always describes one consistent history.
  """

  def __init__(self, path: str, resume_step: int | None = None):
    self._path = path
    if resume_step is not None and os.path.exists(path):
      kept = [row for row in jsonl.read(path) if row.get("step", 0) <= resume_step]
      with atomic.write(path) as f:
        f.writelines(json.dumps(row) + "\n" for row in kept)
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

