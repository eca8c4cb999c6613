"""torchvision `squeezenet1_0` / `squeezenet1_1` → `alexnet_jax.models.squeezenet.SqueezeNet`.

torchvision indexes `features` by position (conv1 at 0, fire modules between the
pools) and the final 1×1 conv is `classifier.1`. There is no flatten before a
linear layer, so only conv kernels need transposing.
"""

from __future__ import annotations

from typing import Any, Mapping

from alexnet_jax.models import squeezenet as sq_model
from alexnet_jax.torch_convert import common

VERSIONS = {"squeezenet1_0": "1_0", "squeezenet1_1": "1_1"}


def fire_indices(version: str) -> dict[str, int]:
  """Flax fire name (fire2 … fire9) → index in torchvision's `features` (conv, relu, pool come first)."""
  pool_after = sq_model.VERSIONS[version][2]
  index, out = 3, {}
  for i in range(2, 2 + len(sq_model.FIRES)):
    out[f"fire{i}"] = index
    index += 2 if i in pool_after else 1
  return out


def convert(name: str, state_dict: Mapping[str, Any]) -> dict[str, Any]:
  if name not in VERSIONS:
    raise common.ConversionError(f"{name!r} is not a torchvision SqueezeNet; use one of {sorted(VERSIONS)}.")
  version = VERSIONS[name]
  sd = common.StateDict(state_dict)
  params: dict[str, Any] = {"conv1": sd.conv("features.0")}
  for flax_name, idx in fire_indices(version).items():
    params[flax_name] = {part: sd.conv(f"features.{idx}.{part}") for part in ("squeeze", "expand1x1", "expand3x3")}
  params["conv10"] = sd.conv("classifier.1")
  module = sq_model.SqueezeNet(num_classes=common.infer_num_classes(sd, "classifier.1.weight"), version=version)
  return common.finish(name, sd, params, {}, module, input_shape=(1, 64, 64, 3))


def config_arg(name: str) -> str:
  return f"configs/squeezenet.py:version={VERSIONS[name]},norm=torchvision"
