"""Every command in the README's code blocks works: its config loads, its model fits its input.

Each `python main.py`, `alexnet-jax`, `python -m ...` and `pip install -r` line of README.md and of
the pages under docs/ (`DOCUMENTS`) is checked in-process (no subprocesses):

- a config-taking command: the config loads with its arguments and `--config.*` overrides through
  the same flag parser main.py uses, and `jax.eval_shape` of its model on the config's input size
  gives (batch, classes) logits with no zero-size feature map on the way;
- a sweep: the same for every member;
- a converter command: the config it uses for `--model`;
- a quick-mode (`smoke`) training command: a few steps on the embedded data (marked slow).

Data sets that need a download or a folder are checked for config and geometry only.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import re
import shlex

import jax
import jax.numpy as jnp
import pytest
from absl import flags
from ml_collections import config_flags

from alexnet_jax import config_files
from tests.conftest import REPO

README = REPO / "README.md"
# The documents whose commands are checked: the README and every page under docs/.
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md"))]
_KNOWN_CLASSES = {"embedded": 10, "imagenet2012": 1000, "cifar10": 10, "cifar100": 100, "mnist": 10}


def code_blocks(text: str) -> list[str]:
  """The contents of the markdown's fenced code blocks."""
  return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def readme_commands(text: str) -> list[list[str]]:
  """Every command of the code blocks, split into words (comments and `&&` chains split off)."""
  commands = []
  for block in code_blocks(text):
    for line in block.splitlines():
      if not line.strip() or not re.match(r"\s*(python|pip|alexnet-jax)\b", line):
        continue
      words = shlex.split(line, comments=True)
      current: list[str] = []
      for word in words + ["&&"]:
        if word == "&&":
          if current:
            commands.append(current)
          current = []
        else:
          current.append(word)
  return commands


def config_command(words: list[str]) -> tuple[str, list[str]] | None:
  """(config spec, ['--config.x=y', ...]) of a main.py / alexnet-jax command; None for others."""
  specs = [w.removeprefix("--config=") for w in words if w.startswith("--config=")]
  if not specs:
    return None
  return specs[-1], [w for w in words if w.startswith("--config.")]


def load_config(spec: str, overrides: list[str]):
  """The config main.py would run: the same flag definition, parsed from the same words."""
  argv = ["main.py", "--config=" + config_files.resolve(spec), *overrides]
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config", flag_values=fv, lock_config=True, sys_argv=argv)
  fv(argv)
  return fv.config


def num_classes(config) -> int:
  """Classes of the config's dataset, from its name (a folder counts as 10 here)."""
  return _KNOWN_CLASSES.get(config.dataset, 10)


# The geometry check reads only the model fields, the class count and the input size, which many
# commands share (a sweep's seeds, one config under other flags): each distinct triple that passed is
# not traced again (63 commands and sweep members, 21 distinct models).
_GEOMETRIES_PASSED: set[tuple[str, int, int]] = set()


def check_geometry(config) -> None:
  """The model on the config's input size: logits (2, classes), no zero-size intermediate."""
  from alexnet_jax.models import build_model
  classes = num_classes(config)
  key = (config.model.to_json_best_effort(sort_keys=True), classes, config.input.image_size)
  if key in _GEOMETRIES_PASSED:
    return
  module = build_model(config.model, classes)
  size = config.input.image_size
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)

  def forward(images):
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    variables = module.init(rngs, images, train=False)
    return module.apply(variables, images, train=False, capture_intermediates=True, mutable=["intermediates"])

  logits, state = jax.eval_shape(forward, x)
  main = logits[0] if isinstance(logits, (tuple, list)) else logits
  assert main.shape == (2, classes), f"{config.name}: logits {main.shape}, expected {(2, classes)}"
  for path, leaf in jax.tree_util.tree_leaves_with_path(state["intermediates"]):
    assert math.prod(leaf.shape) > 0, f"{config.name}: zero-size feature map {jax.tree_util.keystr(path)} {leaf.shape}"
  _GEOMETRIES_PASSED.add(key)


def sweep_configs(words: list[str]) -> list[tuple[str, list[str]]]:
  """(config spec, overrides) of every member of `python -m experiments.sweep <file> [--args=..]`."""
  from experiments import sweep
  path = next(w for w in words[3:] if not w.startswith("-"))
  extra = next((w.removeprefix("--args=") for w in words if w.startswith("--args=")), "")
  jobs = sweep.expand(sweep.load_sweep(str(REPO / path)), "/nonexistent", extra)
  out = []
  for job in jobs:
    spec, overrides = config_command(list(job.argv))
    out.append((str(pathlib.Path(spec.partition(":")[0]).relative_to(REPO)) + ":" + spec.partition(":")[2]
                if spec.startswith(str(REPO)) else spec, overrides))
  return out


# Documented commands known to be broken, each with the change that fixes it; strict, so a
# fixed (or reworded) command must leave this list.
KNOWN_BROKEN = {
    "python main.py --config=configs/alexnet.py:data=cifar10,res=32":
        "AlexNet's 227-px geometry has no feature map left at 32 px; the README example changes",
}


def documented_commands() -> list[tuple[str, list[str]]]:
  """(document, words) of every command of DOCUMENTS, the document named relative to the repository."""
  return [(str(doc.relative_to(REPO)), words) for doc in DOCUMENTS for words in readme_commands(doc.read_text())]


def _cases() -> list:
  cases = []
  for doc, words in documented_commands():
    text = " ".join(words)
    marks = [pytest.mark.xfail(reason=KNOWN_BROKEN[text], strict=True)] if text in KNOWN_BROKEN else []
    cases.append(pytest.param(words, id=f"{doc}: {text}"[:120], marks=marks))
  return cases


CASES = _cases()


def test_the_readme_has_its_two_commands_and_the_docs_theirs():
  readme = [" ".join(words) for doc, words in documented_commands() if doc == "README.md"]
  assert "python main.py --config=configs/alexnet.py:smoke" in readme, "the quick run"
  assert "python -m pytest -q" in readme, "the test command"
  assert any(c.startswith("alexnet-jax") for c in readme), "the installed command is documented"
  ci = (REPO / ".ci" / "run").read_text()
  assert "-m pytest -q" in ci, "CI runs the README's test command"
  pages = {doc for doc, _ in documented_commands() if doc != "README.md"}
  for page in ("CONFIGS", "IMAGENET", "STORES", "EVALUATION", "SWEEPS", "SPEED"):
    assert f"docs/{page}.md" in pages, f"docs/{page}.md has no checked command"
  assert len(CASES) >= 40


@pytest.mark.parametrize("words", CASES)
def test_readme_command(words, monkeypatch):
  monkeypatch.chdir(REPO)
  if words[0] == "pip":
    for i, w in enumerate(words):
      if w == "-r":
        assert (REPO / words[i + 1]).is_file(), f"{words[i + 1]} is missing"
    return
  if words[0] == "python" and words[1] == "-m":
    module = words[2]
    assert importlib.util.find_spec(module) is not None, f"python -m {module}: no such module"
    if module == "experiments.sweep":
      for spec, overrides in sweep_configs(words):
        check_geometry(load_config(spec, overrides))
      return
    if module == "alexnet_jax.torch_convert":
      from alexnet_jax import torch_convert
      model = next(w.removeprefix("--model=") for w in words if w.startswith("--model="))
      assert model in torch_convert.names()
      check_geometry(load_config(torch_convert.config_arg(model), []))
      return
  if words[0] == "alexnet-jax":
    from alexnet_jax import cli
    if words[1] in ("--help", "-h"):
      assert cli.main(words[1:]) == 0
      return
    assert words[1] in cli.COMMANDS, f"alexnet-jax {words[1]}: no such command"
  parsed = config_command(words)
  if parsed is not None:
    check_geometry(load_config(*parsed))


def test_a_broken_geometry_is_caught():
  """A 32-px AlexNet (conv1 stride 4 then three poolings) must fail the geometry check."""
  with pytest.raises(Exception):
    check_geometry(load_config("configs/alexnet.py:data=cifar10,res=32", []))


def _training_commands() -> list:
  seen, out = set(), []
  for _, words in documented_commands():
    parsed = config_command(words)
    modes = [w for w in words if w.startswith("--mode=")] + (["train"] if words[:1] == ["alexnet-jax"] and words[1] == "train" else [])
    if words[:1] == ["alexnet-jax"] and words[1] != "train":
      continue
    if parsed is None or any(m != "--mode=train" and m != "train" for m in modes):
      continue
    spec, overrides = parsed
    if "smoke" not in spec.partition(":")[2].split(","):
      continue  # full-size data sets are not available offline: geometry only
    path, _, args = config_files.resolve(spec).partition(":")
    key = (pathlib.Path(path).name, args, tuple(overrides))  # the repository path and a family name alike
    if key not in seen:
      seen.add(key)
      out.append(pytest.param(spec, overrides, id=spec))
  return out


@pytest.mark.slow
@pytest.mark.parametrize("spec,overrides", _training_commands())
def test_readme_training_command_trains(spec, overrides, tmp_path, monkeypatch):
  """A few steps of the command on a small slice of the embedded data, in-process."""
  monkeypatch.chdir(REPO)
  from alexnet_jax import train
  tiny = ["--config.num_train_steps=2", "--config.batch_size=8", "--config.eval_batch_size=16",
          "--config.embedded_train_size=32", "--config.embedded_eval_size=16", "--config.log_every_steps=1"]
  # The slice is rendered once, into the session's data folder (tests/conftest.py), for every command.
  config = load_config(spec, [*overrides, *tiny])
  _, summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["done"] and summary["step"] == 2
  assert summary["eval"]["num_examples"] == 16
