"""The house rules: which modules may import which, file sizes, and one concern per file."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "alexnet_jax"
MAX_LINES = 400


def _loaded_after(statement: str) -> set[str]:
  """The alexnet_jax modules (and tensorflow) in sys.modules after `statement`, in a fresh interpreter."""
  code = (f"import sys; {statement}; import json; "
          "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('alexnet_jax', 'tensorflow')))))")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
  assert out.returncode == 0, out.stderr[-3000:]
  return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _imports(path: pathlib.Path) -> set[str]:
  """Every module `path` imports (absolute names; `from a import b` gives a and a.b)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
      names |= {f"{node.module}.{a.name}" for a in node.names}
  return names


def _sources() -> list[pathlib.Path]:
  return sorted([*PACKAGE.rglob("*.py"), *(REPO / "experiments").rglob("*.py"), REPO / "main.py"])


def test_models_import_neither_training_nor_data():
  loaded = _loaded_after("import alexnet_jax.models")
  assert "alexnet_jax.train" not in loaded
  assert not {m for m in loaded if m.startswith(("alexnet_jax.data", "tensorflow"))}, loaded
  assert not {"alexnet_jax.checkpoint", "alexnet_jax.workdir", "alexnet_jax.runtime"} & loaded, loaded


def test_errors_import_nothing_of_the_library():
  assert _loaded_after("import alexnet_jax.errors") == {"alexnet_jax", "alexnet_jax.errors"}


def test_evaluation_prediction_and_pretrained_do_not_load_the_training_loop():
  loaded = _loaded_after("import alexnet_jax.eval.run, alexnet_jax.predict, alexnet_jax.pretrained")
  assert "alexnet_jax.runtime" in loaded and "alexnet_jax.train" not in loaded


def test_only_main_and_experiments_import_the_training_loop():
  importers = {str(p.relative_to(REPO)) for p in _sources()
               if {"alexnet_jax.train", "alexnet_jax.train.train_and_evaluate"} & _imports(p)}
  # main.py's logic lives in alexnet_jax/main_lib.py, which the installed command runs too.
  entry = "alexnet_jax/main_lib.py"
  assert entry in importers
  assert not {p for p in importers if p != entry and not p.startswith("experiments/")}, importers


def test_every_user_error_derives_from_user_error():
  from alexnet_jax import checkpoint, errors, predict, train, workdir
  from alexnet_jax.data import folder, imagenet, input_pipeline
  for cls in (checkpoint.CheckpointMismatchError, checkpoint.CheckpointUnreadableError,
              checkpoint.CheckpointWriteError, checkpoint.NoCheckpointError, input_pipeline.DataError, train.TrainingError,
              workdir.WorkdirError, folder.FolderError, imagenet.MissingImageNet, predict.ImagesError,
              errors.ConfigError):
    assert issubclass(cls, errors.UserError), cls
  assert not hasattr(errors, "user_errors")


@pytest.mark.parametrize("path", sorted([*PACKAGE.rglob("*.py"), *(REPO / "experiments").rglob("*.py")]),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_files_are_small_and_open_with_their_concern(path):
  text = path.read_text()
  assert len(text.splitlines()) <= MAX_LINES, f"{path.name} has {len(text.splitlines())} lines"
  doc = ast.get_docstring(ast.parse(text))
  assert doc and doc.strip(), f"{path.name} does not open with a docstring naming its concern"


def _private_names_imported(path: pathlib.Path) -> set[str]:
  """`module.name` for every private (`_x`) name of alexnet_jax that `path` imports or reads:
  `from alexnet_jax.m import _x`, an `import alexnet_jax._m`, or `m._x` on a module imported from it."""
  tree = ast.parse(path.read_text())
  modules: dict[str, str] = {}  # local name → alexnet_jax module it is bound to
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for a in node.names:
        if a.name.split(".")[0] == "alexnet_jax":
          if any(part.startswith("_") for part in a.name.split(".")):
            out.add(a.name)
          modules[a.asname or a.name] = a.name
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
        and node.module.split(".")[0] == "alexnet_jax":
      for a in node.names:
        if a.name.startswith("_") or any(p.startswith("_") for p in node.module.split(".")):
          out.add(f"{node.module}.{a.name}")
        modules[a.asname or a.name] = f"{node.module}.{a.name}"
  for node in ast.walk(tree):
    if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
      base = ast.unparse(node.value)
      if base in modules:
        out.add(f"{modules[base]}.{node.attr}")
  return out


@pytest.mark.parametrize("path", sorted((REPO / "experiments").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_experiments_use_no_private_name_of_the_package(path):
  assert not _private_names_imported(path), f"{path.name} reaches into the package's private names"


def test_the_private_name_check_sees_each_form(tmp_path):
  probe = tmp_path / "probe.py"
  probe.write_text("from alexnet_jax.models import cpu_gradients\nfrom alexnet_jax.train import _data\n"
                   "import alexnet_jax.data.store as store\nx = cpu_gradients._active(), store._OPEN\n"
                   "from alexnet_jax import atomic\natomic.write_text\n")
  assert _private_names_imported(probe) == {"alexnet_jax.train._data", "alexnet_jax.models.cpu_gradients._active",
                                            "alexnet_jax.data.store._OPEN"}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_imports(path: pathlib.Path, modules: set[str]) -> set[str]:
  """The package modules `path` imports anywhere in it (function-level imports count too):
  `from a import b` is the module a.b when there is one, else a."""
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names if a.name in modules}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      for a in node.names:
        name = f"{node.module}.{a.name}"
        out.add(name if name in modules else node.module)
  return out & modules


def test_no_import_circles_in_the_package():
  from scipy.sparse import csgraph, lil_matrix
  files = sorted(PACKAGE.rglob("*.py"))
  names = [_module_name(p) for p in files]
  index = {n: i for i, n in enumerate(names)}
  graph = lil_matrix((len(names), len(names)))
  for path, name in zip(files, names):
    for target in _package_imports(path, set(names)) - {name}:
      graph[index[name], index[target]] = 1
  _, component = csgraph.connected_components(graph.tocsr(), directed=True, connection="strong")
  circles = [sorted(n for n, c in zip(names, component) if c == k) for k in set(component)]
  assert not [c for c in circles if len(c) > 1], [c for c in circles if len(c) > 1]


def test_loading_a_config_loads_no_model_code():
  code = ("import sys; from alexnet_jax.configs import alexnet, vgg, resnet, googlenet, squeezenet; "
          "vgg.get_config('depth=11'); resnet.get_config('depth=50'); "
          "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('flax', 'jax', 'alexnet_jax.models'))}))")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().splitlines()[-1] == "[]"


def test_model_choices_are_what_the_modules_build():
  from alexnet_jax import model_choices
  from alexnet_jax.configs import alexnet as alexnet_config
  from alexnet_jax.models import alexnet, layers, resnet, vgg
  assert tuple(layers.ACTIVATIONS) == model_choices.ACTIVATIONS
  assert vgg.STAGES is model_choices.VGG_STAGES and resnet.DEPTHS is model_choices.RESNET_STAGES
  assert tuple(alexnet.VARIANTS) == model_choices.FIELDS["variant"]
  for arg in ("variant", "towers", "remove_conv"):  # the config string offers what validation accepts
    assert alexnet_config.FAMILY_ARGS[arg].choices is model_choices.FIELDS[arg], arg
