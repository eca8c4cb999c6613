"""End-to-end tests of the trainer on the embedded dataset: it learns, resumes, evaluates.

Most tests call `train.train_and_evaluate` in-process on a quarter-width AlexNet at 64 px;
the command-line checks (config errors, missing ImageNet, --mode=eval) run `main.py`.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from alexnet_jax import jsonl
from alexnet_jax import runtime
from alexnet_jax import train
from alexnet_jax import workdir as workdir_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 150
CLI = ["--config=configs/alexnet.py:smoke,dropout=0.0", "--config.embedded_train_size=2048",
       "--config.embedded_eval_size=256", "--config.model.width=0.25", "--config.batch_size=32",
       "--config.eval_batch_size=64", f"--config.num_train_steps={STEPS}", "--config.log_every_steps=25",
       "--config.eval_every_epochs=1000.0"]


def tiny_config(**overrides):
  """The CLI config above, built in-process (dropout off and 2048 images so 150 steps clearly learn)."""
  from alexnet_jax.configs import alexnet
  c = alexnet.get_config("smoke,dropout=0.0")
  c.unlock()
  c.embedded_train_size, c.embedded_eval_size = 2048, 256
  c.model.width, c.batch_size, c.eval_batch_size = 0.25, 32, 64
  c.num_train_steps, c.log_every_steps, c.eval_every_epochs = STEPS, 25, 1000.0
  c.async_checkpoints = False
  for k, v in overrides.items():
    node = c
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  c.lock()
  return c


def _main(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
  return subprocess.run([sys.executable, "main.py", *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  wd = tmp_path_factory.mktemp("train") / "run"
  state, summary = train.train_and_evaluate(tiny_config(), str(wd))
  return wd, state, summary


def test_training_lowers_loss_and_beats_chance(trained):
  wd, state, summary = trained
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


def test_tensorboard_gets_learning_rate_throughput_and_augmented_images(trained):
  wd, _, _ = trained
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


def test_finished_run_does_not_train_again(trained):
  wd, _, summary = trained
  before = (wd / "metrics.jsonl").read_text()
  state, again = train.train_and_evaluate(tiny_config(), str(wd))
  assert again == summary and int(state.step) == STEPS
  assert (wd / "metrics.jsonl").read_text() == before


def test_eval_only_restores_the_trained_state(trained):
  wd, _, summary = trained
  rt, state, step = runtime.restore_for_inference(tiny_config(), str(wd))
  result = rt.evaluate(state)
  assert step == STEPS
  for k in ("top1", "top5", "loss", "num_examples"):
    assert result[k] == pytest.approx(summary["eval"][k], abs=1e-6), k


def test_eval_mode_on_the_command_line(trained):
  wd, _, summary = trained
  r = _main(*CLI, f"--workdir={wd}", "--mode=eval", "--protocols=center", "--sets=validation")
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"Checkpoint step {STEPS}" in r.stdout, r.stdout[-3000:]
  row = [line for line in r.stdout.splitlines() if line.startswith("| center | validation |")]
  assert row, r.stdout[-3000:]
  assert f"| {100 * summary['eval']['top1']:.2f} |" in row[0]  # the same top-1 as training's eval


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


@pytest.mark.parametrize("args, expected", [
    (["--config=configs/alexnet.py:smoke", "--config.nonexistent=1"], "nonexistent"),
    (["--config=configs/alexnet.py:lnr=False"], "Unknown config argument 'lnr'"),
    (["--config=configs/alexnet.py:smoke", "--config.batch_size=abc"], "batch_size"),
])
def test_bad_config_is_a_clear_error(args, expected, tmp_path):
  r = _main(*args, f"--workdir={tmp_path / 'run'}", timeout=120)
  assert r.returncode != 0
  assert expected in r.stderr, r.stderr[-2000:]
  assert not (tmp_path / "run").exists()


def test_missing_imagenet_names_folder_and_tars(tmp_path):
  empty = tmp_path / "tfds"
  empty.mkdir()
  r = _main("--config=configs/alexnet.py", f"--config.data_dir={empty}", f"--workdir={tmp_path / 'run'}",
            timeout=180)
  assert r.returncode == 2, r.stderr[-3000:]
  err = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
  assert "ILSVRC2012_img_train.tar" in r.stderr and "ILSVRC2012_img_val.tar" in r.stderr, err
  assert str(empty) in r.stderr
