"""Bad config input on the command line: one line naming the field, exit code 2, workdir untouched.

The command line runs in-process (`main.run()` with a patched `sys.argv`): validation
happens before anything is read, compiled or written, so each case takes milliseconds.
A few cases also run as a real `python main.py` process.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from alexnet_jax import model_choices
from alexnet_jax import models
from alexnet_jax.configs import common
from alexnet_jax.configs import validate

from tests.conftest import REPO
from tests.conftest import subprocess_env

sys.path.insert(0, str(REPO))
from alexnet_jax import main_lib as main  # noqa: E402

BASE = "configs/alexnet.py:smoke"

# A bad `--config.<field>` value for every field of common.base_config() (and `dataset`).
BAD_FIELDS = {
    "name": "", "seed": "-1", "dataset": "/no/such/folder", "data_dir": None, "train_split": "",
    "eval_split": "", "embedded_train_size": "0", "embedded_eval_size": "-5",
    "input.image_size": "-1", "input.resize_size": "0", "input.train_crop": "zoom", "input.crop_region": "edge",
    "input.inception_min_area": "0.0", "input.flip": "maybe", "input.pca_lighting": "-0.1",
    "input.pca_eigval": "(0.1,0.2)", "input.pca_eigvec": "((1,0,0),(0,1,0))", "input.mean_rgb": "(1.0,2.0)",
    "input.std_rgb": "(0.0,1.0,1.0)", "input.shuffle_buffer": "0", "input.prefetch": "0",
    "input.skip_corrupt": "perhaps", "input.pipeline": "tfrecord", "input.store_dir": None,
    "input.store_size": "-1", "input.inception_aspect_range": "(0.75,)",
    "optimizer.name": "adam", "optimizer.momentum": "1.5",
    "optimizer.nesterov": "sometimes", "optimizer.weight_decay": "-1e-4",
    "optimizer.decay_biases_and_norms": "2x", "optimizer.adam_b1": "1.0", "optimizer.adam_b2": "-0.1",
    "optimizer.eps": "0.0", "optimizer.grad_clip_norm": "-1.0", "schedule.name": "linear",
    "schedule.base_lr": "0.0", "schedule.warmup_epochs": "-1.0", "schedule.warmup_steps": "-1",
    "schedule.patience_steps": "2.5", "schedule.first_cut_step": "-10", "schedule.factor": "0.0",
    "schedule.patience": "-1", "schedule.max_reductions": "-2", "schedule.cooldown": "-1",
    "schedule.min_delta": "-0.5", "schedule.step_epochs": "(30.0,-60.0)", "schedule.poly_power": "0.0",
    "batch_size": "0", "eval_batch_size": "-8", "num_epochs": "-3.0", "num_train_steps": "0",
    "label_smoothing": "1.0", "aux_loss_weight": "-0.3", "dtype": "float16", "log_every_steps": "0",
    "eval_every_epochs": "0.0", "checkpoint_every_steps": "-1", "keep_checkpoints": "0",
    "async_checkpoints": "nope", "nan_guard": "nah", "keep_host_memory": "maybe", "cpu_onednn": "sure",
    "mesh.data": "0", "mesh.model": "0",
    "mesh.strategy": "pipeline", "eval.protocols": "('center','5crop')", "eval.sets": "()",
    "eval.in_training.protocols": "('dense',)", "eval.in_training.sets": "('test',)",
    "eval.scales": "(256,-384)", "eval.googlenet_scales": "(0,)", "eval.batch_size": "-1",
    "eval.real_json": None, "eval.v2_dir": None, "eval.minival_size": "0", "eval.top_confusions": "-1",
}
# Free-text fields any string is valid for (a missing file is found when it is read).
FREE_TEXT = {"data_dir", "eval.real_json", "eval.v2_dir", "input.store_dir"}

FAMILIES = ("alexnet", "zfnet", "vgg", "googlenet", "resnet", "resnext", "senet", "squeezenet", "cifar_cnn")


def _run(argv: list[str], capsys) -> tuple[int, str]:
  """Runs the command line in-process; returns (exit code, stdout+stderr)."""
  from absl import flags
  flags.FLAGS.unparse_flags()
  for name in [n for n in flags.FLAGS if n.startswith("config.")]:  # overrides a previous parse defined
    delattr(flags.FLAGS, name)
  old = sys.argv
  sys.argv = ["main.py", *argv]
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    with pytest.raises(SystemExit) as exit_info:
      main.run()
  finally:
    sys.argv = old
    os.chdir(cwd)
  out = capsys.readouterr()
  return exit_info.value.code, out.out + out.err


def _assert_one_line_error(code: int, text: str, *needles: str) -> None:
  lines = [line for line in text.splitlines() if line.startswith("error: ")]
  assert code == 2, text
  assert "Traceback" not in text, text
  assert len(lines) == 1, text
  for needle in needles:
    assert needle in lines[0], (needle, text)


def test_every_base_config_field_has_a_bad_input_case():
  assert set(BAD_FIELDS) == set(validate.RULES) | {"dataset"}


@pytest.mark.parametrize("field", sorted(set(BAD_FIELDS) - FREE_TEXT))
def test_bad_field_value(field, tmp_path, capsys):
  workdir = tmp_path / "run"
  code, text = _run([f"--config={BASE}", f"--config.{field}={BAD_FIELDS[field]}", f"--workdir={workdir}"], capsys)
  _assert_one_line_error(code, text, field)
  assert not workdir.exists()


def _family_cases():
  """(family, argument, bad value) for every argument of every family."""
  for name in FAMILIES:
    module = importlib.import_module(f"alexnet_jax.configs.{name}")
    spec = {**common.ARGS, **getattr(module, "FAMILY_ARGS", importlib.import_module(
        "alexnet_jax.configs.resnet").FAMILY_ARGS)}
    for key, a in spec.items():
      if a.type is bool:
        bad = "maybe"
      elif a.choices:
        bad = "999" if a.type is int else "bogus"
      elif key == "data":
        bad = "/no/such/folder"
      elif key in ("dropout",):
        bad = "1.5"
      else:
        bad = "-3"
      yield name, key, bad
    yield name, "lrm", "False"  # an unknown (misspelt) argument


@pytest.mark.parametrize("name,key,bad", list(_family_cases()))
def test_bad_family_argument(name, key, bad, tmp_path, capsys):
  workdir = tmp_path / "run"
  code, text = _run([f"--config=configs/{name}.py:smoke,{key}={bad}", f"--workdir={workdir}"], capsys)
  _assert_one_line_error(code, text, key if key != "data" else "no such folder")
  assert not workdir.exists()


def _model_cases():
  for name in models.names():
    for key, default in models.config_fields(name).items():
      if isinstance(default, bool):
        continue  # a bool field's bad value is a flag-type error, covered below
      if isinstance(default, str) or key in model_choices.FIELDS or key == "depth":
        bad = "'bogus'" if isinstance(default, str) else "7"
      elif isinstance(default, (tuple, list)):
        bad = "(32,0)"
      elif key in validate.MODEL_RATES:
        bad = "1.0"
      else:
        bad = "-1" if isinstance(default, int) else "-1.0"
      yield name, key, bad


_FAMILY_OF_MODEL = {"alexnet": "alexnet", "zfnet": "zfnet", "vgg": "vgg", "googlenet": "googlenet",
                    "resnet": "resnet", "squeezenet": "squeezenet", "cifar_cnn": "cifar_cnn"}


@pytest.mark.parametrize("name,key,bad", list(_model_cases()))
def test_bad_model_field(name, key, bad, tmp_path, capsys):
  workdir = tmp_path / "run"
  code, text = _run([f"--config=configs/{_FAMILY_OF_MODEL[name]}.py:smoke", f"--config.model.{key}={bad}",
                     f"--workdir={workdir}"], capsys)
  _assert_one_line_error(code, text, f"model.{key}")
  assert not workdir.exists()


@pytest.mark.parametrize("argv,needle", [
    (["--config=configs/alexnet.py:smoke", "--config.batch_size=abc"], "batch_size"),
    (["--config=configs/alexnet.py:smoke", "--config.batch_sise=3"], "batch_size"),
    (["--config=configs/alexnet.py:smoke", "--config.model.lrn=maybe"], "model.lrn"),
    (["--config=configs/nothere.py"], "no such config file"),
    (["--config=configs/alexnet.py:smoke,data=notadataset"], "TFDS"),
    (["--config=configs/alexnet.py:data=cifar10,res=32"], "at least 67 px"),
    (["--config=configs/alexnet.py:smoke,epochs"], "needs a value"),
    (["--config=configs/alexnet.py:smoke,batch=many"], "batch"),
])
def test_flag_and_data_mistakes(argv, needle, tmp_path, capsys):
  workdir = tmp_path / "run"
  code, text = _run([*argv, f"--workdir={workdir}"], capsys)
  _assert_one_line_error(code, text, needle)
  assert not workdir.exists()


def test_several_problems_are_listed_one_per_line(capsys, tmp_path):
  code, text = _run([f"--config={BASE}", "--config.batch_size=0", "--config.dtype=float16",
                     f"--workdir={tmp_path / 'run'}"], capsys)
  lines = [line for line in text.splitlines() if line.startswith("error: ")]
  assert code == 2 and len(lines) == 2 and "Traceback" not in text


@pytest.mark.parametrize("argv", [
    ["--config=configs/alexnet.py:smoke,lrm=False"],
    ["--config=configs/alexnet.py:smoke", "--config.dtype=float16"],
])
def test_real_process(argv, tmp_path):
  """The same one line from a real `python main.py` (absl's own parser included)."""
  workdir = tmp_path / "run"
  r = subprocess.run([sys.executable, "main.py", *argv, f"--workdir={workdir}"], cwd=REPO, env=subprocess_env(),
                     capture_output=True, text=True, timeout=300)
  _assert_one_line_error(r.returncode, r.stdout + r.stderr)
  assert not workdir.exists()
