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


def resolve_config_flag(argv: list[str]) -> list[str]:
  """argv with `--config=<family or path>[:args]` turned into the path of an existing file."""
  out = list(argv)
  for i, arg in enumerate(out):
    if arg.startswith("--config="):
      out[i] = "--config=" + resolve(arg.removeprefix("--config="))
    elif arg == "--config" and i + 1 < len(out):
      out[i + 1] = resolve(out[i + 1])
  return out


def parse_flags(flag_values, argv: list[str]) -> list[str]:
  """Parses `argv` (its --config already resolved) into absl `flag_values`, which define a
  `config` flag (ml_collections' DEFINE_config_file); returns the arguments left over.

  sys.argv must be `argv` while it runs: the config flag reads its --config.<field> overrides there.
  A mistake is one ConfigError line: absl's own flag errors (e.g. `--config.batch_size=abc`),
  a misspelt `--config.<field>`, a missing config file, and an error raised inside
  `get_config` (ml_collections reports it with the traceback in its text, so the config file
  is then loaded again directly to report the `UserError` itself).
  """
  import re
  from absl import flags
  try:
    remaining = flag_values(argv)
  except flags.Error as e:
    raise ConfigError(str(_config_file_error(argv) or str(e).splitlines()[0])) from None
  except (AttributeError, KeyError) as e:  # a --config.<field> the config does not have
    bad = ", ".join(a.split("=")[0] for a in argv[1:] if a.startswith("--config."))
    hint = re.search(r'Did you mean "([\w.]+)"', str(e))
    raise ConfigError(f"no such config field among {bad}" + (f" (did you mean {hint.group(1)!r}?)" if hint else "")
                      ) from None
  flag = flag_values["config"] if "config" in flag_values else None
  path = (flag.config_filename or "").partition(":")[0] if flag is not None and flag.present else ""
  if path and not os.path.isfile(path):
    raise ConfigError(f"--config={path}: no such config file (the families are configs/<family>.py)")
  return remaining


def _config_file_error(argv: list[str]) -> "BaseException | None":
  """The `UserError` the --config file raises when loaded directly, if any."""
  from alexnet_jax import errors
  values = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")]
  if not values:
    return None
  try:
    load(values[-1])
  except errors.UserError as e:
    return e
  except Exception:  # noqa: BLE001 - anything else: absl's own message is the better one
    return None
  return None
