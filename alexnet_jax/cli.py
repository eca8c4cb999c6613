"""The `alexnet-jax` command: one subcommand per kind of work, each the tool the repository runs.

  alexnet-jax train   --config=alexnet:smoke [--workdir=...] [--config.<field>=...]
  alexnet-jax eval    --config=alexnet:smoke [--protocols=center,10crop] [--sets=validation]
  alexnet-jax predict --config=alexnet:smoke --images=photos/
  alexnet-jax prepare --config=alexnet:smoke
  alexnet-jax convert --model=resnet50 --pth=resnet50.pth --workdir=runs/resnet50_tv
  alexnet-jax sweep   experiments/sweeps/demo.py          (from a repository checkout)
  alexnet-jax kernels --workdir=runs/alexnet [--steps=all] [--layer=conv1] [--out=...]
  alexnet-jax neighbours --config=alexnet:smoke [--images=photos/ | --queries=8] [--k=6]

train, eval, predict and prepare are `python main.py --mode=<subcommand>` with the same flags
(`alexnet-jax train --help` lists them); `--config` takes a family name (`alexnet`, `vgg`, ...)
or a config file's path, each optionally followed by `:<arguments>`. convert is
`python -m alexnet_jax.torch_convert`; sweep is `python -m experiments.sweep`. kernels (first-layer
kernels by tower, colour scores) and neighbours (nearest training images, Figure 4) are
`python -m alexnet_jax.inspect.kernels` and `python -m alexnet_jax.inspect.neighbours`.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

PROG = "alexnet-jax"
MODES = ("train", "eval", "predict", "prepare")
COMMANDS = MODES + ("convert", "sweep", "kernels", "neighbours")


def usage() -> str:
  """The top-level help: the module docstring plus the config families."""
  from alexnet_jax import config_files
  return f"usage: {PROG} <{'|'.join(COMMANDS)}> [flags]\n\n{__doc__}\nConfig families: " + \
      ", ".join(config_files.families()) + "\n"


def _sweep_main(argv: list[str]) -> int:
  """experiments.sweep.main from the repository checkout in the current folder."""
  if os.path.isfile(os.path.join(os.getcwd(), "experiments", "sweep.py")) and os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
  try:
    from experiments import sweep
  except ImportError:
    print(f"error: {PROG} sweep runs the sweep runner of a repository checkout (experiments/sweep.py); "
          "run it from the repository's folder.", file=sys.stderr)
    return 2
  return sweep.main(argv)


def main(argv: Sequence[str] | None = None) -> int:
  """Dispatches `alexnet-jax <command> ...`; returns the exit code (SystemExit from absl passes)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(usage())
    return 0 if argv else 2
  command, rest = argv[0], argv[1:]
  if command not in COMMANDS:
    print(f"error: unknown command {command!r}; choose one of {', '.join(COMMANDS)} "
          f"({PROG} --help).", file=sys.stderr)
    return 2
  if command in MODES:
    if any(a == "--mode" or a.startswith("--mode=") for a in rest):
      print(f"error: {PROG} {command} sets --mode itself; drop --mode.", file=sys.stderr)
      return 2
    from alexnet_jax import main_lib
    main_lib.run([f"{PROG} {command}", f"--mode={command}", *rest])
    return 0
  if command == "convert":
    from alexnet_jax.torch_convert import __main__ as convert
    return convert.run(rest)
  if command == "kernels":
    from alexnet_jax.inspect import kernels
    return kernels.run(rest)
  if command == "neighbours":
    from alexnet_jax.inspect import neighbours
    return neighbours.run(rest)
  return _sweep_main(rest)


def entry_point() -> None:
  """The console script: `alexnet-jax ...`."""
  sys.exit(main())


if __name__ == "__main__":
  entry_point()
