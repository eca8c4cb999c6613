"""Training metrics (a clu collection) and the metric writers: clu's default one and metrics.jsonl.

Evaluation is scored on the host (`eval/scoring.Tally`); clu's writers are imported only when a
writer is made, so importing this module loads neither TensorFlow nor TensorBoard.
"""

# No `from __future__ import annotations`: clu reads the metric classes from the annotations.

import json
import os
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
from clu import metrics

from alexnet_jax import atomic
from alexnet_jax import jsonl


def default_writer(workdir: str, *, just_logging: bool, asynchronous: bool):
  """clu's default writer: the console, and TensorBoard unless `just_logging`."""
  from clu import metric_writers  # imports TensorFlow: only a training run loads it
  return metric_writers.create_default_writer(workdir, just_logging=just_logging, asynchronous=asynchronous)


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

