"""Running an evaluation (alexnet_jax/eval/run.py): the eval command on the shared trained run, progress.

The multi-view step's averaging and top-k are tested by hand in test_eval_scoring.py.
"""

import json
import os
import shutil
import sys

import pytest

from alexnet_jax import progress
from alexnet_jax.eval import run as eval_run
from tests.conftest import TRAINED_CLI
from tests.conftest import TRAINED_STEPS
from tests.conftest import tiny_train_config


def test_evaluation_logs_progress_with_eta(monkeypatch):
  """A long evaluation is never silent: the evaluator's loop reports images done, total and ETA."""
  lines = []
  now = [0.0]
  monkeypatch.setattr(eval_run, "PROGRESS_EVERY_S", 5.0)
  bar = progress.Progress(1000, "144crop × validation", unit="images", every_s=eval_run.PROGRESS_EVERY_S,
                          log=lines.append, clock=lambda: now[0])
  now[0] = 1.0
  assert bar.advance(100) is None  # not yet due
  now[0] = 10.0
  assert bar.advance(100) == "144crop × validation: 200/1,000 images (20.0%), 20/s, ETA 40s"
  assert "progress.Progress(" in open(eval_run.__file__).read()  # the evaluator's loop uses it


def test_eval_mode_on_the_trained_run(trained_run, tmp_path, capsys, monkeypatch):
  """`--mode=eval` on the shared trained run: the centre protocol scores exactly what training's own
  evaluation scored (loss, top-1, top-5), 10crop counts every image once, and the outputs are written."""
  from alexnet_jax import main_lib
  wd = tmp_path / "run"
  shutil.copytree(trained_run.workdir, wd, ignore=shutil.ignore_patterns(".lock"))
  monkeypatch.setattr(sys, "argv", list(sys.argv))  # main_lib.run sets it
  with pytest.raises(SystemExit) as exit_:
    main_lib.run(["main.py", *TRAINED_CLI, f"--workdir={wd}", "--mode=eval", "--protocols=center,10crop",
                  "--sets=validation"])
  out, err = capsys.readouterr()
  assert exit_.value.code in (0, None), (out + err)[-3000:]
  assert f"Checkpoint step {TRAINED_STEPS} of {wd}" in out, out[-3000:]
  rows = {line.split("|")[1].strip(): line for line in out.splitlines() if "| validation |" in line}
  assert set(rows) == {"center", "10crop"}, out[-3000:]
  trained = trained_run.summary["eval"]
  assert f"| {100 * trained['top1']:.2f} |" in rows["center"]
  assert rows["10crop"].rstrip("| ").endswith("256")  # every validation image, once
  saved = json.loads((wd / "eval" / f"step_{TRAINED_STEPS}.json").read_text())["results"]
  center = saved["center"]["validation"]
  for key in ("top1", "top5"):
    assert center[key] == pytest.approx(trained[key], abs=1e-6), key
  assert center["loss"] == pytest.approx(trained["loss"], rel=1e-5)  # the loss pins the crops and logits
  assert center["views"] == 1 and center["num_examples"] == 256
  assert saved["10crop"]["validation"]["views"] == 10 and saved["10crop"]["validation"]["num_examples"] == 256
  assert {"report.md", "per_class_10crop_validation.csv", "confusions_center_validation.md"} <= set(
      os.listdir(wd / "eval"))
  assert not (trained_run.workdir / "eval").exists()


def test_missing_step_and_workdir_are_clear(trained_run, tmp_path):
  config = tiny_train_config()
  with pytest.raises(FileNotFoundError, match="available"):
    eval_run.evaluate_checkpoint(config, str(trained_run.workdir), step=999)
  with pytest.raises(FileNotFoundError, match="Train first"):
    eval_run.evaluate_checkpoint(config, str(tmp_path / "empty"))
  assert not (trained_run.workdir / "eval").exists()
