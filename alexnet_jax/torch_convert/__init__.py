"""torchvision checkpoints → Flax variables for the models in `alexnet_jax.models`.

    from alexnet_jax import torch_convert
    variables = torch_convert.convert("vgg16_bn", torch_state_dict)
    logits = module.apply(variables, images_nhwc, train=False)

`convert` returns {'params': ..., 'batch_stats': ...} ('batch_stats' only for models
with BatchNorm) as float32 NumPy trees. Each family lives in its own module that
exposes `convert(name, state_dict) -> variables` and `config_arg(name) -> str`
(the config file and arguments of the matching Flax model, used by the
command-line tool); families are imported only when asked for, so a missing
optional family never breaks the others.

Input normalisation: torchvision models expect RGB in [0, 1] normalised by the
ImageNet mean/std; our pipeline feeds 0..255 images normalised by the config's
`input.mean_rgb`/`input.std_rgb`, which for converted models must be the same
ImageNet statistics (the `configs/*` files of BN families use them).
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from alexnet_jax import model_choices
from alexnet_jax.torch_convert.common import ConversionError

# torchvision model name → converter module (relative to this package).
_FAMILY = {
    "alexnet": "alexnet",
    **{f"vgg{d}{bn}": "vgg" for d in model_choices.DEPTHS["vgg"] for bn in ("", "_bn")},
    "googlenet": "googlenet",
    **{f"resnet{d}": "resnet" for d in model_choices.DEPTHS["resnet"]},
    "resnext50_32x4d": "resnet",
    "squeezenet1_0": "squeezenet",
    "squeezenet1_1": "squeezenet",
}


def names() -> list[str]:
  """Every torchvision model name that has a converter."""
  return sorted(_FAMILY)


def family_module(model_name: str):
  """The converter module for `model_name`, imported on first use."""
  if model_name not in _FAMILY:
    raise ConversionError(
        f"No converter for torchvision model {model_name!r}; choose one of {', '.join(names())}.")
  return importlib.import_module(f"alexnet_jax.torch_convert.{_FAMILY[model_name]}")


def convert(model_name: str, state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """Converts a torchvision `state_dict` for `model_name` to Flax variables (checked leaf by leaf)."""
  return family_module(model_name).convert(model_name, state_dict)


def config_arg(model_name: str) -> str:
  """`configs/<family>.py:<args>` naming the Flax config that matches `model_name`."""
  return family_module(model_name).config_arg(model_name)


__all__ = ["ConversionError", "config_arg", "convert", "names"]
