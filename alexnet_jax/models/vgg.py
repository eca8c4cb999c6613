"""VGG (Simonyan & Zisserman, ICLR 2015), configurations A/B/D/E = VGG-11/13/16/19.

Five stages of 3×3 stride-1 convolutions (padding 1) with ReLU, each closed by a
2×2 stride-2 max-pool; then fc6 4096 → ReLU → dropout, fc7 4096 → ReLU → dropout,
fc8. `bn=True` inserts BatchNorm after every conv (torchvision's `vgg*_bn`; not in
the paper, which trained the deeper nets by initialising from the shallower ones).

Layout and parameter names follow torchvision so checkpoints convert 1:1: the
features are average-pooled to 7×7 before the classifier (`pool7='adaptive'`,
exactly torch's AdaptiveAvgPool2d: an identity at 224 px, a plain average pool
when the map size divides 7, overlapping windows otherwise, and replication for
maps smaller than 7×7 — so fc6 always has 512·7·7 inputs and parameter counts equal
torchvision's, e.g. 138,357,544 for VGG-16). For small images `pool7='flatten'`
skips the pooling and flattens whatever map remains, which keeps fc6 small (e.g.
512·2·2 inputs at 64 px) at the cost of checkpoint compatibility.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax import model_choices
from alexnet_jax.models import cpu_gradients, layers

STAGES = model_choices.VGG_STAGES  # convs per stage for each depth
CHANNELS = (64, 128, 256, 512, 512)
POOL7_MODES = model_choices.FIELDS["pool7"]


class ConvBlock(nn.Module):
  """3×3 conv (with bias, even before BN, as torchvision) → optional BatchNorm → ReLU."""

  features: int
  bn: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    # Kaiming-normal fan_out init and zero biases, as torchvision.
    x = nn.Conv(self.features, (3, 3), padding=[(1, 1), (1, 1)],
                kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
                conv_general_dilated=cpu_gradients.conv_general_dilated,
                dtype=self.dtype, param_dtype=jnp.float32, name="conv")(x)
    if self.bn:
      x = layers.batch_norm(train, self.dtype, name="bn")(x)
    return nn.relu(x)


class VGG(nn.Module):
  """VGG-11/13/16/19 with optional BatchNorm; set from `config.model` by `models.build_model`."""

  num_classes: int = 1000
  depth: int = 16
  bn: bool = False
  width: float = 1.0
  fc_dim: int = 4096
  dropout: float = 0.5
  pool7: str = "adaptive"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.depth not in STAGES:
      raise ValueError(f"VGG depth must be one of {sorted(STAGES)}, got {self.depth}.")
    if self.pool7 not in POOL7_MODES:
      raise ValueError(f"VGG pool7 must be one of {POOL7_MODES}, got {self.pool7!r}.")
    x = x.astype(self.dtype)
    for stage, (convs, channels) in enumerate(zip(STAGES[self.depth], CHANNELS), start=1):
      for j in range(1, convs + 1):
        x = ConvBlock(layers.scaled(channels, self.width), self.bn, self.dtype, name=f"conv{stage}_{j}")(x, train)
      x = layers.max_pool(x, 2, 2)
    if self.pool7 == "adaptive":
      x = layers.adaptive_avg_pool(x, 7)
    x = x.reshape((x.shape[0], -1))
    fc_init = nn.initializers.normal(0.01)
    for name in ("fc6", "fc7"):
      x = nn.Dense(layers.scaled(self.fc_dim, self.width), kernel_init=fc_init, dtype=self.dtype,
                   param_dtype=jnp.float32, name=name)(x)
      x = nn.relu(x)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, kernel_init=fc_init, dtype=self.dtype,
                 param_dtype=jnp.float32, name="fc8")(x)
    return x.astype(jnp.float32)
