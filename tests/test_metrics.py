"""Metrics (alexnet_jax/metrics.py): top-k correctness, the training collection, and the metrics.jsonl writer."""

import json

import numpy as np
import pytest

from alexnet_jax import jsonl
from alexnet_jax import metrics


def test_topk_correct_k1_k5_ties_and_few_classes():
  logits = np.array([[0.0, 1.0, 5.0, 2.0, 3.0, 4.0, -1.0],   # ranking 2, 5, 4, 3, 1, 0, 6
                     [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]],   # tie at the top between 0 and 2
                    np.float32)
  top1 = lambda labels: metrics.topk_correct(logits, np.array(labels), 1).tolist()
  top5 = lambda labels: metrics.topk_correct(logits, np.array(labels), 5).tolist()
  assert top1([2, 0]) == [1.0, 1.0]
  assert top1([5, 2]) == [0.0, 0.0]  # a tie goes to the lower class index, as in argmax
  assert top5([1, 4]) == [1.0, 1.0]  # rank 5 of row 0; row 1's five are 0, 2, then 1, 3, 4 (ties by index)
  assert top5([0, 6]) == [0.0, 0.0]  # rank 6 is not top-5
  assert metrics.topk_correct(logits[:, :3], np.array([1, 1]), 5).tolist() == [1.0, 1.0]  # k clipped to 3


def test_train_metrics_average_and_keep_the_last_learning_rate():
  m = metrics.TrainMetrics.empty()
  for loss, lr in ((4.0, 0.1), (2.0, 0.01)):
    m = m.merge(metrics.TrainMetrics.single_from_model_output(
        loss=np.array(loss), top1=np.array(0.5), top5=np.array(1.0), grad_norm=np.array(loss),
        learning_rate=np.array(lr)))
  out = metrics.to_floats(m.compute())
  assert out == pytest.approx({"loss": 3.0, "top1": 0.5, "top5": 1.0, "grad_norm": 3.0, "learning_rate": 0.01})


def test_jsonl_writer_appends_rows_and_drops_lost_ones_on_resume(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  w = metrics.JsonlWriter(path)
  for step in (10, 20, 30):
    w.write_scalars(step, {"train/loss": np.float32(step / 10)})
  w.close()
  assert jsonl.read(path)[0] == {"step": 10, "train/loss": 1.0}
  with open(path, "a") as f:
    f.write('{"step": 35, "train/lo')  # torn by a kill
  w = metrics.JsonlWriter(path, resume_step=20)  # restored from checkpoint 20: 30 and the torn row were lost
  w.write_scalars(25, {"eval/top1": 0.5})
  w.close()
  assert [json.loads(line)["step"] for line in open(path)] == [10, 20, 25]
  metrics.JsonlWriter(path).close()  # without a resume step nothing is dropped
  assert [r["step"] for r in jsonl.read(path)] == [10, 20, 25]
