"""torchvision ResNet-18/34/50/101/152 and ResNeXt-50 32×4d → `alexnet_jax.models.resnet`.

The Flax module mirrors torchvision's layout, so the conversion is a rename:

  conv1 + bn1                         → stem/{conv,bn}
  layer{s}.{b}.conv{i} + bn{i}        → layer{s}_{b}/conv{i}/{conv,bn}
  layer{s}.{b}.downsample.{0,1}       → layer{s}_{b}/downsample/{conv,bn}
  fc                                  → head/fc

torchvision strides the 3×3 conv of a bottleneck ("v1.5"), which is the Flax
default (`stride_on_3x3=True`); stride placement does not change any shape, so it
is fixed here rather than inferred. torchvision has no SE-ResNet, so there is no
converter for it.
"""

from __future__ import annotations

from typing import Any, Mapping

from alexnet_jax.models import resnet as resnet_model
from alexnet_jax.torch_convert import common

# torchvision name → (depth, groups, width_per_group).
ARCHS: dict[str, tuple[int, int, int]] = {
    "resnet18": (18, 1, 64),
    "resnet34": (34, 1, 64),
    "resnet50": (50, 1, 64),
    "resnet101": (101, 1, 64),
    "resnet152": (152, 1, 64),
    "resnext50_32x4d": (50, 32, 4),
}


def arch(name: str) -> tuple[int, int, int]:
  """(depth, groups, width_per_group) of torchvision model `name`, with a clear error otherwise."""
  if name not in ARCHS:
    raise common.ConversionError(
        f"{name!r} is not a ResNet this converter knows; choose one of {', '.join(sorted(ARCHS))}.")
  return ARCHS[name]


def config_arg(name: str) -> str:
  """The Flax config (file and arguments) whose model matches torchvision's `name`."""
  depth, groups, width_per_group = arch(name)
  if groups != 1:
    return f"configs/resnext.py:depth={depth},groups={groups},width_per_group={width_per_group}"
  return f"configs/resnet.py:depth={depth}"


def flax_module(name: str, num_classes: int = 1000) -> resnet_model.ResNet:
  """The Flax module that `convert(name, ...)` produces variables for."""
  depth, groups, width_per_group = arch(name)
  return resnet_model.ResNet(num_classes=num_classes, depth=depth, groups=groups,
                             width_per_group=width_per_group, stride_on_3x3=True)


def _block(sd: common.StateDict, prefix: str, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
  """(params, batch_stats) of one residual block at torch prefix `prefix` (e.g. 'layer2.0')."""
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  convs = 2 if kind == "basic" else 3
  for i in range(1, convs + 1):
    params[f"conv{i}"], stats[f"conv{i}"] = sd.conv_bn(f"{prefix}.conv{i}", f"{prefix}.bn{i}")
  if f"{prefix}.downsample.0.weight" in sd:
    params["downsample"], stats["downsample"] = sd.conv_bn(f"{prefix}.downsample.0", f"{prefix}.downsample.1")
  return params, stats


def convert(name: str, state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """torchvision `name` state_dict → {'params', 'batch_stats'} for `flax_module(name)`.

  The number of classes is read from `fc.weight`, so fine-tuned heads convert too.
  Raises ConversionError when a tensor is missing, unused or of the wrong shape.
  """
  depth, _, _ = arch(name)
  kind, blocks = resnet_model.stage_spec(depth)
  sd = common.StateDict(state_dict)
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  params["stem"], stats["stem"] = sd.conv_bn("conv1", "bn1")
  for stage, count in enumerate(blocks, start=1):
    for index in range(count):
      key = f"layer{stage}_{index}"
      params[key], stats[key] = _block(sd, f"layer{stage}.{index}", kind)
  params["head"] = {"fc": sd.linear("fc")}
  module = flax_module(name, common.infer_num_classes(sd, "fc.weight"))
  # Shapes do not depend on the resolution past the global pool; 64 px keeps the check cheap.
  return common.finish(name, sd, params, stats, module, input_shape=(1, 64, 64, 3))
