"""Model registry: `config.model` → a Flax module.

`config.model.name` picks the family; every other field of `config.model` is a field of
that family's module, passed as is (`Module(**fields)`), so the config and the module
speak the same names. Every module is called as `module.apply(variables, images,
train=bool)` on NHWC images and returns float32 logits. Modules with BatchNorm keep their
running statistics in the 'batch_stats' collection; modules with auxiliary heads
(GoogLeNet) `sow` their auxiliary logits into the 'aux' collection when `train=True`;
LRN layers `sow` the size of their normalisation term into 'intermediates'
(`layers.lrn_terms`).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from alexnet_jax.errors import ConfigError
from alexnet_jax.models import layers  # noqa: F401  (models.layers.lrn_terms)

# name → (module path relative to this package, class name).
_FAMILIES = {
    "alexnet": ("alexnet", "AlexNet"),
    "zfnet": ("zfnet", "ZFNet"),
    "vgg": ("vgg", "VGG"),
    "googlenet": ("googlenet", "GoogLeNet"),
    "resnet": ("resnet", "ResNet"),
    "squeezenet": ("squeezenet", "SqueezeNet"),
    "cifar_cnn": ("cifar_cnn", "CifarCNN"),
}
# Fields every module has that do not come from `config.model`.
_NOT_CONFIG = ("num_classes", "dtype", "parent", "name")


def names() -> list[str]:
  return sorted(_FAMILIES)


def model_class(name: str) -> type[nn.Module]:
  """The module class of family `name`."""
  if name not in _FAMILIES:
    raise ConfigError(f"config.model.name={name!r} is not a known model; choose one of {names()}.")
  path, cls = _FAMILIES[name]
  return getattr(importlib.import_module(f"alexnet_jax.models.{path}"), cls)


def config_fields(name: str) -> dict[str, Any]:
  """{field: default} of family `name`'s module that `config.model` may set."""
  return {f.name: f.default for f in dataclasses.fields(model_class(name))
          if f.name not in _NOT_CONFIG and f.init}


def build_model(model_cfg, num_classes: int, dtype: Any = jnp.float32) -> nn.Module:
  """Builds the module named by `model_cfg.name` from the other fields of `model_cfg`."""
  fields = dict(model_cfg.items()) if hasattr(model_cfg, "items") else dict(model_cfg)
  name = fields.pop("name")
  cls = model_class(name)
  unknown = sorted(set(fields) - set(config_fields(name)))
  if unknown:
    raise ConfigError(f"config.model has fields {unknown} that model {name!r} does not take; "
                      f"it takes: {', '.join(sorted(config_fields(name)))}.")
  return cls(num_classes=num_classes, dtype=dtype, **fields)
