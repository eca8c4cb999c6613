"""Convert a torchvision checkpoint into a run folder (or an .npz) the trainer can use.

  python -m alexnet_jax.torch_convert --model=vgg16 --pth=vgg16-397923af.pth --workdir=runs/vgg16-tv
  python -m alexnet_jax.torch_convert --model=googlenet --pth=googlenet.pth --out=googlenet.npz

The `.pth` is read with `torch.load(..., weights_only=True)`, which refuses arbitrary
pickled code. The converted variables are checked against the Flax model that
`--config` (default: the one matching `--model`) builds, then written with
`alexnet_jax.pretrained.save_pretrained(workdir, variables, config)` so that
`main.py --config=... --workdir=...` can evaluate or fine-tune them, and/or to
`--out` as a flat .npz ('params/conv1/kernel', 'batch_stats/...'). With `--workdir` it also
writes `<workdir>/<model>.safetensors` (the same flat names; `--safetensors` picks another path),
which any framework with a safetensors reader can load without this package.

Without PyTorch installed it stops with one line saying which requirements file brings it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Mapping, Sequence

import numpy as np
from flax import traverse_util

from alexnet_jax import config_files
from alexnet_jax import console
from alexnet_jax import errors
from alexnet_jax import progress
from alexnet_jax import torch_convert
from alexnet_jax.torch_convert import common


def load_state_dict(path: str) -> Mapping[str, Any]:
  """Tensors of a `.pth` file, loaded without unpickling code; unwraps {'state_dict': ...} files."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--pth={path!r} does not exist; give the path of a torchvision .pth file.")
  torch = import_torch()
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


class TorchMissingError(errors.UserError):
  """PyTorch, which reads the .pth file, is not installed."""


def import_torch():
  """torch, or a one-line TorchMissingError saying how to install it."""
  try:
    import torch  # only this command needs torch
  except ImportError:
    raise TorchMissingError(
        "Converting a .pth file needs PyTorch: pip install -r requirements-dev.txt "
        "(or pip install 'alexnet-jax[test]').") from None
  return torch


def load_config(spec: str):
  """`family[:args]` or `path/to/config.py[:args]` → the ConfigDict its `get_config(args)` returns."""
  return config_files.load(spec)


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


def save_safetensors(path: str, variables: Mapping[str, Any], metadata: Mapping[str, str]) -> None:
  """Writes the variables as one safetensors file, flat names ('params/conv1/kernel', ...)."""
  from safetensors.numpy import save_file
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  flat = {k: np.ascontiguousarray(v) for k, v in traverse_util.flatten_dict(variables, sep="/").items()}
  save_file(flat, path, metadata=dict(metadata))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m alexnet_jax.torch_convert", description=__doc__.split("\n")[0])
  p.add_argument("--model", required=True, help=f"torchvision model name: {', '.join(torch_convert.names())}")
  p.add_argument("--pth", required=True, help="the .pth state_dict file")
  p.add_argument("--workdir", default="", help="run folder to write the pretrained checkpoint into")
  p.add_argument("--config", default="", help="config file[:args] of the matching Flax model (default from --model)")
  p.add_argument("--out", default="", help="also (or only) write the variables to this .npz file")
  p.add_argument("--safetensors", default="",
                 help="write the variables to this .safetensors file (default with --workdir: <workdir>/<model>.safetensors)")
  args = p.parse_args(argv)
  if not args.workdir and not args.out:
    p.error("give --workdir (an Orbax run folder for main.py) and/or --out (an .npz file).")
  return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  config_spec = args.config or torch_convert.config_arg(args.model)
  safetensors_path = args.safetensors or (
      os.path.join(args.workdir, f"{args.model}.safetensors") if args.workdir else "")
  stages = ["load", "convert", "check"] + ["npz"] * bool(args.out) + ["checkpoint"] * bool(args.workdir)
  stages += ["safetensors"] * bool(safetensors_path)
  # Stage lines carry the ETA; the bar itself prints only its closing line.
  bar = progress.Progress(len(stages), f"Converted {args.model}", unit="stages", every_s=float("inf"), log=print)

  def stage(text: str) -> None:
    eta = bar.eta()
    left = f" (ETA {progress.format_duration(eta)})" if eta is not None else ""
    print(f"[{bar.done + 1}/{len(stages)}] {text}{left}", flush=True)

  stage(f"loading {args.pth}")
  import_torch()  # before any work: a missing torch is one line, not a late traceback
  console.quiet(import_tensorflow=False)  # the conversion reads no dataset: TensorFlow is not needed
  if args.workdir:  # a used workdir is refused before the loading and converting, not after them
    from alexnet_jax import pretrained
    pretrained.refuse_used_workdir(args.workdir)
  state_dict = load_state_dict(args.pth)
  bar.advance()
  stage("converting to Flax variables")
  variables = torch_convert.convert(args.model, state_dict)
  classifier = variables["params"]
  num_classes = [v for k, v in traverse_util.flatten_dict(classifier, sep="/").items() if k.endswith("kernel")][-1].shape[-1]
  bar.advance()
  stage(f"checking them against the model of {config_spec}")
  config = load_config(config_spec)
  check_config(variables, config, num_classes)
  bar.advance()
  if args.out:
    stage(f"writing {args.out}")
    save_npz(args.out, variables)
    bar.advance()
  if args.workdir:
    stage(f"writing the step-0 checkpoint to {args.workdir}")
    from alexnet_jax import pretrained
    pretrained.save_pretrained(args.workdir, variables, config, num_classes)
    bar.advance()
  if safetensors_path:
    stage(f"writing {safetensors_path}")
    save_safetensors(safetensors_path, variables,
                     {"model": args.model, "config": config_spec, "num_classes": str(num_classes)})
    bar.advance()
  bar.finish()
  if args.workdir:
    print(f"Wrote a pretrained checkpoint of {args.model} to {args.workdir}. Evaluate it with:\n"
          f"  python main.py --config={config_spec} --workdir={args.workdir} --mode=eval")
  return variables


def run(argv: Sequence[str] | None = None) -> int:
  """main() for the command line: a mistake the user can fix is one line and exit code 2."""
  try:
    main(argv)
  except errors.UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(run())
