"""Convert a torchvision checkpoint into a run folder (or an .npz) the trainer can use.

  python -m alexnet_jax.torch_convert --model=vgg16 --pth=vgg16-397923af.pth --workdir=runs/vgg16-tv
  python -m alexnet_jax.torch_convert --model=googlenet --pth=googlenet.pth --out=googlenet.npz

The `.pth` is read with `torch.load(..., weights_only=True)`, which refuses arbitrary
pickled code. The converted variables are checked against the Flax model that
`--config` (default: the one matching `--model`) builds, then written with
`alexnet_jax.pretrained.save_pretrained(workdir, variables, config)` so that
`main.py --config=... --workdir=...` can evaluate or fine-tune them, and/or to
`--out` as a flat .npz ('params/conv1/kernel', 'batch_stats/...').
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any, Mapping, Sequence

import numpy as np
from flax import traverse_util

from alexnet_jax import torch_convert
from alexnet_jax.torch_convert import common


def load_state_dict(path: str) -> Mapping[str, Any]:
  """Tensors of a `.pth` file, loaded without unpickling code; unwraps {'state_dict': ...} files."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--pth={path!r} does not exist; give the path of a torchvision .pth file.")
  import torch  # only this command needs torch
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises several types for a refused or corrupt pickle
    raise ValueError(
        f"Could not load {path!r} as a weights-only state_dict ({type(e).__name__}: {e}). "
        "Save the model with torch.save(model.state_dict(), path).") from e
  for key in ("state_dict", "model"):
    if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
      obj = obj[key]
  if not isinstance(obj, Mapping) or not all(hasattr(v, "shape") for v in obj.values()):
    raise ValueError(f"{path!r} does not hold a state_dict (a mapping of names to tensors).")
  return obj


def load_config(spec: str):
  """`path/to/config.py[:args]` → the ConfigDict its `get_config(args)` returns."""
  path, _, arg = spec.partition(":")
  if not path.endswith(".py") or not os.path.isfile(path):
    raise FileNotFoundError(f"--config={spec!r}: {path!r} is not a config file (expected e.g. configs/vgg.py:depth=16).")
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
  if repo_root not in sys.path:  # config files import `configs.common`
    sys.path.insert(0, repo_root)
  module_spec = importlib.util.spec_from_file_location("_converted_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def check_config(variables: Mapping[str, Any], config, num_classes: int) -> None:
  """Fails unless the config's model has exactly the converted leaves and shapes."""
  from alexnet_jax.models import build_model
  module = build_model(config.model, num_classes)
  size = config.input.image_size
  problems = common.compare(variables, common.reference_shapes(module, (1, size, size, 3)))
  if problems:
    raise common.ConversionError(
        "The converted weights do not fit the model of this --config:\n  " + "\n  ".join(problems)
        + "\nPass the config that matches the checkpoint (the default for --model usually does).")


def save_npz(path: str, variables: Mapping[str, Any]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, **traverse_util.flatten_dict(variables, sep="/"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m alexnet_jax.torch_convert", description=__doc__.split("\n")[0])
  p.add_argument("--model", required=True, help=f"torchvision model name: {', '.join(torch_convert.names())}")
  p.add_argument("--pth", required=True, help="the .pth state_dict file")
  p.add_argument("--workdir", default="", help="run folder to write the pretrained checkpoint into")
  p.add_argument("--config", default="", help="config file[:args] of the matching Flax model (default from --model)")
  p.add_argument("--out", default="", help="also (or only) write the variables to this .npz file")
  args = p.parse_args(argv)
  if not args.workdir and not args.out:
    p.error("give --workdir (an Orbax run folder for main.py) and/or --out (an .npz file).")
  return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  state_dict = load_state_dict(args.pth)
  variables = torch_convert.convert(args.model, state_dict)
  classifier = variables["params"]
  num_classes = [v for k, v in traverse_util.flatten_dict(classifier, sep="/").items() if k.endswith("kernel")][-1].shape[-1]
  config = load_config(args.config or torch_convert.config_arg(args.model))
  check_config(variables, config, num_classes)
  if args.out:
    save_npz(args.out, variables)
    print(f"Wrote {args.out}")
  if args.workdir:
    from alexnet_jax import pretrained
    pretrained.save_pretrained(args.workdir, variables, config, num_classes)
    print(f"Wrote a pretrained checkpoint of {args.model} to {args.workdir}. Evaluate it with:\n"
          f"  python main.py --config={args.config or torch_convert.config_arg(args.model)} "
          f"--workdir={args.workdir} --mode=eval")
  return variables


if __name__ == "__main__":
  main()
