"""torchvision `vgg11`…`vgg19_bn` → `alexnet_jax.models.vgg.VGG`.

torchvision numbers its `features` Sequential by position: each conv is followed by
(BatchNorm and) ReLU, each stage by a max-pool, so the index of every conv is
recomputed here from the stage layout. The classifier is `classifier.0/3/6`; the
first of them reads the NCHW-flattened 512×7×7 map and gets its rows reordered.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from alexnet_jax.models import vgg as vgg_model
from alexnet_jax.torch_convert import common

_NAME = re.compile(r"^vgg(11|13|16|19)(_bn)?$")


def parse_name(name: str) -> tuple[int, bool]:
  """'vgg16_bn' → (16, True)."""
  match = _NAME.match(name)
  if not match:
    raise common.ConversionError(f"{name!r} is not a torchvision VGG name (vgg11 … vgg19_bn).")
  return int(match.group(1)), match.group(2) is not None


def conv_indices(depth: int, bn: bool) -> dict[str, int]:
  """Flax conv name (conv<stage>_<j>) → index of that conv in torchvision's `features`."""
  per_conv = 3 if bn else 2
  index, out = 0, {}
  for stage, convs in enumerate(vgg_model.STAGES[depth], start=1):
    for j in range(1, convs + 1):
      out[f"conv{stage}_{j}"] = index
      index += per_conv
    index += 1  # the stage's max-pool
  return out


def convert(name: str, state_dict: Mapping[str, Any]) -> dict[str, Any]:
  depth, bn = parse_name(name)
  sd = common.StateDict(state_dict)
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  for flax_name, idx in conv_indices(depth, bn).items():
    if bn:
      params[flax_name], stats[flax_name] = sd.conv_bn(f"features.{idx}", f"features.{idx + 1}")
    else:
      params[flax_name] = {"conv": sd.conv(f"features.{idx}")}
  params["fc6"] = sd.linear("classifier.0", flatten_chw=(512, 7, 7))
  params["fc7"] = sd.linear("classifier.3")
  params["fc8"] = sd.linear("classifier.6")
  module = vgg_model.VGG(num_classes=common.infer_num_classes(sd, "classifier.6.weight"), depth=depth, bn=bn)
  return common.finish(name, sd, params, stats, module, input_shape=(1, 32, 32, 3))


def config_arg(name: str) -> str:
  depth, bn = parse_name(name)
  return f"configs/vgg.py:depth={depth},bn={bn},norm=torchvision"
