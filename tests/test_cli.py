"""The installable package: wheel contents, the alexnet-jax command, config names."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from alexnet_jax import cli
from alexnet_jax import config_files
from alexnet_jax import errors
from alexnet_jax import main_lib
from tests.conftest import REPO


def test_wheel_holds_the_package_its_configs_and_data_and_the_command(tmp_path):
  pytest.importorskip("setuptools")
  src = tmp_path / "src"
  src.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(REPO / name, src / name)
  shutil.copytree(REPO / "alexnet_jax", src / "alexnet_jax", ignore=shutil.ignore_patterns("__pycache__"))
  subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                  "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
  (wheel,) = (tmp_path / "dist").glob("alexnet_jax-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  assert "alexnet_jax/configs/alexnet.py" in names and "alexnet_jax/configs/common.py" in names
  assert "alexnet_jax/data/imagenet_classes.tsv" in names and "alexnet_jax/cli.py" in names
  assert not [n for n in names if n.split("/")[0] in ("configs", "experiments", "tests", "main.py")]
  entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
  assert "alexnet-jax = alexnet_jax.cli:entry_point" in entry
  meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
  assert "Requires-Python: >=3.12" in meta and "Provides-Extra: test" in meta and "Provides-Extra: cuda13" in meta


def test_requirements_and_pyproject_agree():
  """Every pinned package of requirements.txt is a dependency, and its pin satisfies the range."""
  import tomllib
  Requirement = pytest.importorskip("packaging.requirements").Requirement
  deps = {Requirement(d).name: Requirement(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())
          ["project"]["dependencies"]}
  for line in (REPO / "requirements.txt").read_text().splitlines():
    if "==" in line and not line.startswith("#"):
      name, version = line.split("==")
      assert name in deps, f"{name} is pinned in requirements.txt but not a dependency"
      assert deps[name].specifier.contains(version), f"{name}=={version} is outside {deps[name].specifier}"


def test_family_names_and_paths_resolve(tmp_path, monkeypatch):
  assert config_files.resolve("alexnet:smoke") == os.path.join(config_files.PACKAGE_DIR, "alexnet.py") + ":smoke"
  monkeypatch.chdir(REPO)
  assert config_files.resolve("configs/vgg.py:depth=11") == "configs/vgg.py:depth=11"  # an existing path as given
  monkeypatch.chdir(tmp_path)  # an installed copy, run elsewhere: the repository path still works
  assert config_files.resolve("configs/vgg.py:depth=11").startswith(config_files.PACKAGE_DIR)
  assert config_files.load("resnet:depth=18").model.depth == 18
  assert "common" not in config_files.families() and "squeezenet" in config_files.families()
  with pytest.raises(errors.ConfigError, match="alexnet, cifar_cnn"):
    config_files.resolve("alexnett:smoke")
  assert config_files.resolve_config_flag(["x", "--config=zfnet", "--config.seed=1"]) == \
      ["x", "--config=" + os.path.join(config_files.PACKAGE_DIR, "zfnet.py"), "--config.seed=1"]


def test_cli_help_and_bad_commands(capsys):
  assert cli.main(["--help"]) == 0
  out = capsys.readouterr().out
  assert "train|eval|predict|prepare|convert|sweep" in out and "alexnet, cifar_cnn" in out
  assert cli.main([]) == 2
  assert cli.main(["fit"]) == 2 and "unknown command 'fit'" in capsys.readouterr().err
  assert cli.main(["eval", "--mode=train"]) == 2 and "drop --mode" in capsys.readouterr().err


def test_cli_train_help_lists_the_flags_and_a_bad_config_is_one_line(capsys, monkeypatch):
  monkeypatch.setattr(sys, "argv", ["alexnet-jax"])
  with pytest.raises(SystemExit) as exit_:
    cli.main(["train", "--help"])
  assert exit_.value.code in (0, 1, None)  # absl's --help exits 1 after printing
  assert "--workdir" in capsys.readouterr().out
  with pytest.raises(SystemExit) as exit_:
    cli.main(["train", "--config=nosuchfamily:smoke"])
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("error: --config='nosuchfamily:smoke'") and "Traceback" not in err


def test_convert_without_torch_says_what_to_install(tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
  pth = tmp_path / "w.pth"
  pth.write_bytes(b"")
  assert cli.main(["convert", "--model=alexnet", f"--pth={pth}", f"--workdir={tmp_path / 'run'}"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.count("\n") == 0 and "pip install -r requirements-dev.txt" in err
  assert not (tmp_path / "run").exists()


def test_sweep_outside_a_checkout_is_one_line(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setitem(sys.modules, "experiments", None)
  assert cli.main(["sweep", "x.py"]) == 2
  assert "repository checkout" in capsys.readouterr().err


def test_run_can_be_called_again_in_one_process(tmp_path, capsys, monkeypatch):
  """A second `main_lib.run` (a notebook, another test) parses its `--config.*` overrides afresh."""
  import sys
  from alexnet_jax import main_lib
  monkeypatch.setattr(sys, "argv", list(sys.argv))  # run() sets it
  for value in ("0", "-4"):
    with pytest.raises(SystemExit) as exit_:
      main_lib.run(["main.py", "--config=configs/alexnet.py:smoke", f"--config.batch_size={value}",
                    f"--workdir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"config.batch_size={value}: must be a positive integer" in err, err
  assert not (tmp_path / "run").exists()
