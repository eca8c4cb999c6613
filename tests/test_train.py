"""End-to-end tests of the trainer on the embedded dataset: it learns, resumes, evaluates.

The tests that need a finished run share the session's `trained_run` (tests/conftest.py: a
quarter-width AlexNet at 64 px, trained once in-process); the others train a few steps of
the same config. Refusals run the command line in-process (`main_lib.run`).
"""

from __future__ import annotations

import sys

import jax
import numpy as np
import pytest

from alexnet_jax import jsonl
from alexnet_jax import main_lib
from alexnet_jax import train
from alexnet_jax import workdir as workdir_lib
from alexnet_jax.eval import run as eval_run

from tests.conftest import TRAINED_STEPS as STEPS
from tests.conftest import tiny_train_config as tiny_config


def test_training_lowers_loss_and_beats_chance(trained_run):
  wd, state, summary = trained_run
  rows = [r for r in jsonl.read(str(wd / "metrics.jsonl")) if "train/loss" in r]
  assert [r["step"] for r in rows] == list(range(25, STEPS + 1, 25))
  first, last = rows[0]["train/loss"], rows[-1]["train/loss"]
  assert last < first - 0.3, (first, last)
  assert summary["done"] and summary["step"] == STEPS == int(state.step)
  assert summary["eval"]["num_examples"] == 256
  assert summary["eval"]["top1"] > 0.18  # 10 classes: chance is 0.1 (± 0.02 on 256 images)
  assert summary["eval"]["top5"] > summary["eval"]["top1"]
  assert np.isfinite(summary["eval"]["loss"]) and summary["num_params"] > 0
  assert (wd / "config.json").exists() and jsonl.read_summary(str(wd)) == summary


def _event_tags(workdir: pathlib.Path) -> set[str]:
  """Every summary tag in the run's TensorBoard event files."""
  import tensorflow as tf
  tags = set()
  for path in workdir.glob("events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      tags |= {v.tag for v in event.summary.value}
  return tags


def test_tensorboard_gets_learning_rate_throughput_and_augmented_images(trained_run):
  wd, _, _ = trained_run
  tags = _event_tags(wd)
  assert {"train/learning_rate", "train/img_per_s", "train/loss", "eval/top1"} <= tags, tags
  assert any(t.startswith("train/augmented_images") for t in tags), tags


def test_no_tensorboard_falls_back_to_console_and_jsonl(tmp_path, monkeypatch, caplog):
  from clu import metric_writers

  def broken(*args, **kwargs):
    raise ImportError("no module named 'tensorboard'")
  monkeypatch.setattr(metric_writers, "create_default_writer", broken)
  wd = tmp_path / "run"
  with caplog.at_level("WARNING"):
    _, summary = train.train_and_evaluate(tiny_config(num_train_steps=2, log_every_steps=1), str(wd))
  assert summary["done"]
  warnings = [r.getMessage() for r in caplog.records if "No TensorBoard summaries" in r.getMessage()]
  assert len(warnings) == 1 and "metrics.jsonl" in warnings[0], warnings
  assert [r["step"] for r in jsonl.read(str(wd / "metrics.jsonl")) if "train/loss" in r] == [1, 2]
  assert not list(wd.glob("events.out.tfevents.*"))


def test_finished_run_does_not_train_again(trained_run, tmp_path):
  import shutil
  wd = tmp_path / "run"  # a copy: other test processes may be reading the shared run
  shutil.copytree(trained_run.workdir, wd, ignore=shutil.ignore_patterns(".lock"))
  summary = trained_run.summary
  before = (wd / "metrics.jsonl").read_text()
  state, again = train.train_and_evaluate(tiny_config(), str(wd))
  assert again == summary and int(state.step) == STEPS
  assert (wd / "metrics.jsonl").read_text() == before


def test_eval_only_restores_the_trained_state(trained_run):
  """The eval command's centre crop on validation repeats what training logged: one evaluator."""
  wd, _, summary = trained_run
  out = eval_run.evaluate_checkpoint(tiny_config(), str(wd), protocols=["center"], sets=["validation"],
                                     write=False)
  assert out["step"] == STEPS
  result = out["results"]["center"]["validation"]
  for k in ("top1", "top5", "loss", "num_examples"):
    assert result[k] == pytest.approx(summary["eval"][k], abs=1e-6), k


def test_training_evaluates_every_protocol_and_set_the_config_declares(tmp_path):
  """config.eval.in_training: 10-crop beside the centre crop while training, on every image."""
  over = {"num_train_steps": 2, "log_every_steps": 1, "eval.in_training.protocols": ("center", "10crop")}
  _, summary = train.train_and_evaluate(tiny_config(**over), str(tmp_path / "run"))
  rows = [r for r in jsonl.read(str(tmp_path / "run" / "metrics.jsonl")) if "eval/top1" in r]
  assert [r["step"] for r in rows] == [2]
  for key in ("top1", "top5", "loss", "num_examples"):
    assert f"eval/{key}" in rows[0] and f"eval/10crop/validation/{key}" in rows[0], rows[0]
  assert rows[0]["eval/10crop/validation/num_examples"] == rows[0]["eval/num_examples"] == 256
  assert summary["eval"]["10crop/validation/top1"] == rows[0]["eval/10crop/validation/top1"]


def test_save_and_resume_gives_identical_state(tmp_path):
  """8 steps at once, or 4 steps then a restart that resumes to 8: the same state bit for bit."""
  over = {"num_train_steps": 8, "log_every_steps": 3, "checkpoint_every_steps": 4, "schedule.name": "constant"}
  whole, _ = train.train_and_evaluate(tiny_config(**over), str(tmp_path / "whole"))
  train.train_and_evaluate(tiny_config(**{**over, "num_train_steps": 4}), str(tmp_path / "split"))
  resumed, summary = train.train_and_evaluate(tiny_config(**over), str(tmp_path / "split"))
  assert summary["done"] and int(resumed.step) == 8
  for name in ("params", "opt_state", "batch_stats"):
    a, b = jax.device_get(getattr(whole, name)), jax.device_get(getattr(resumed, name))
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(x, y, err_msg=name)


def test_unwritable_workdir_is_refused(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("x")
  with pytest.raises(workdir_lib.WorkdirError, match="not writable.*--workdir"):
    train.train_and_evaluate(tiny_config(), str(blocker / "run"))


def test_missing_imagenet_names_folder_and_tars(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(sys, "argv", list(sys.argv))  # main_lib.run sets it
  empty = tmp_path / "tfds"
  empty.mkdir()
  with pytest.raises(SystemExit) as exit_:
    main_lib.run(["main.py", "--config=configs/alexnet.py", f"--config.data_dir={empty}",
                  f"--workdir={tmp_path / 'run'}"])
  err = capsys.readouterr().err
  assert exit_.value.code == 2, err[-3000:]
  assert "ILSVRC2012_img_train.tar" in err and "ILSVRC2012_img_val.tar" in err, err[-3000:]
  assert str(empty) in err and "Traceback" not in err
