"""Finding config files: a family name (`alexnet:smoke`) or a path (`configs/alexnet.py:smoke`).

The config modules ship inside the package (`alexnet_jax/configs/`), so an installed copy can
run `alexnet-jax train --config=alexnet:smoke` from any folder; a path that exists is used as
given, and the repository's `configs/<family>.py` paths resolve to the packaged files when run
from elsewhere.
"""

from __future__ import annotations

import importlib.util
import os

from alexnet_jax.errors import ConfigError

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_NOT_FAMILIES = ("__init__", "common", "validate")


def families() -> list[str]:
  """The config families shipped with the package: 'alexnet', 'vgg', ..."""
  return sorted(f[:-3] for f in os.listdir(PACKAGE_DIR)
                if f.endswith(".py") and f[:-3] not in _NOT_FAMILIES)


def resolve(spec: str) -> str:
  """'<family or path>[:args]' → '<existing .py file>[:args]'; a ConfigError names the choices."""
  path, colon, arg = spec.partition(":")
  if os.path.isfile(path):
    return spec
  name = os.path.basename(path).removesuffix(".py")
  bare = os.sep not in path and "/" not in path and not path.endswith(".py")
  packaged = os.path.join(PACKAGE_DIR, f"{name}.py")
  repo_style = os.path.basename(os.path.dirname(path)) == "configs" and path.endswith(".py")
  if (bare or repo_style) and name in families():
    return packaged + colon + arg
  raise ConfigError(f"--config={spec!r}: no such config file {path!r}. Give a family "
                    f"({', '.join(families())}) or the path of a config file, e.g. alexnet:smoke.")


def load(spec: str):
  """The ConfigDict that `get_config(args)` of the resolved file returns."""
  path, _, arg = resolve(spec).partition(":")
  module_spec = importlib.util.spec_from_file_location("_loaded_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)
