"""Model registry: `config.model.name` → a Flax module.

Every family module exposes `build(model_cfg, num_classes, dtype) -> nn.Module`; it
reads its fields from the config in that one place and passes plain values to the
module. Every module is called as `module.apply(variables, images, train=bool)` on
NHWC images and returns float32 logits. Modules with BatchNorm keep their running
statistics in the 'batch_stats' collection; modules with auxiliary heads (GoogLeNet)
`sow` their auxiliary logits into the 'aux' collection when `train=True`.
"""

from __future__ import annotations

import importlib
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from alexnet_jax.errors import ConfigError

# name → module path (relative to this package) that defines `build`.
_FAMILIES = {
    "alexnet": "alexnet",
    "zfnet": "zfnet",
    "vgg": "vgg",
    "googlenet": "googlenet",
    "resnet": "resnet",
    "squeezenet": "squeezenet",
    "cifar_cnn": "cifar_cnn",
}


def names() -> list[str]:
  return sorted(_FAMILIES)


def build_model(model_cfg, num_classes: int, dtype: Any = jnp.float32) -> nn.Module:
  """Builds the module named by `model_cfg.name`."""
  name = model_cfg.name
  if name not in _FAMILIES:
    raise ConfigError(f"config.model.name={name!r} is not a known model; choose one of {names()}.")
  module = importlib.import_module(f"alexnet_jax.models.{_FAMILIES[name]}")
  return module.build(model_cfg, num_classes, dtype)
