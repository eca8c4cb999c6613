"""torchvision `alexnet` → `alexnet_jax.models.alexnet.AlexNet(variant='owt')`.

torchvision's AlexNet is the one-weird-trick net (64-192-384-256-256, no LRN, one
tower) with conv1 padded by 2, i.e. our `variant=owt, geometry=224`. Its
AdaptiveAvgPool2d(6, 6) is an identity at 224 px, the resolution the Flax model is
built for; fc6 reads the NCHW-flattened 256×6×6 map and gets its rows reordered.
"""

from __future__ import annotations

from typing import Any, Mapping

from alexnet_jax.models import alexnet as alexnet_model
from alexnet_jax.torch_convert import common

# Flax layer → torchvision module path.
LAYERS = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8",
          "conv5": "features.10", "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"}


def convert(name: str, state_dict: Mapping[str, Any]) -> dict[str, Any]:
  if name != "alexnet":
    raise common.ConversionError(f"The AlexNet converter handles 'alexnet' only, got {name!r}.")
  sd = common.StateDict(state_dict)
  params = {}
  for flax_name, torch_name in LAYERS.items():
    if flax_name == "fc6":
      params[flax_name] = sd.linear(torch_name, flatten_chw=(256, 6, 6))
    elif flax_name.startswith("fc"):
      params[flax_name] = sd.linear(torch_name)
    else:
      params[flax_name] = sd.conv(torch_name)
  module = alexnet_model.AlexNet(num_classes=common.infer_num_classes(sd, "classifier.6.weight"),
                                 variant="owt", towers=1, lrn=False, conv1_padding=2)
  return common.finish(name, sd, params, {}, module, input_shape=(1, 224, 224, 3))


def config_arg(name: str) -> str:
  return "configs/alexnet.py:variant=owt,geometry=224"
