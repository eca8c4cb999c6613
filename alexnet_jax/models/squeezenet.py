"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016): AlexNet accuracy with 50× fewer parameters.

Built from "fire" modules: a 1×1 squeeze conv (few channels) feeding parallel 1×1 and
3×3 expand convs whose outputs are concatenated. There are no FC layers: after the
last fire module, dropout 0.5 → 1×1 conv to the classes → ReLU → global average pool.

  1.0: conv1 96×7×7/2, pool, fire2-4, pool, fire5-8, pool, fire9   (≈1.25M params)
  1.1: conv1 64×3×3/2, pool, fire2-3, pool, fire4-5, pool, fire6-9 (≈1.24M params,
       2.4× less compute: the pools come earlier)

Pools are 3×3 stride 2 with torch's ceil_mode, and initialisation is torchvision's
(Kaiming-uniform convs, the final conv N(0, 0.01), zero biases), so torchvision
checkpoints convert exactly. Names follow the paper: conv1, fire2 … fire9, conv10.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax.models import cpu_gradients, layers

# (squeeze, expand1x1, expand3x3) for fire2 … fire9 (the same in both versions).
FIRES = ((16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
         (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))
# version → (conv1 channels, conv1 kernel, fire modules after which to max-pool).
VERSIONS = {"1_0": (96, 7, (4, 8)), "1_1": (64, 3, (3, 5))}

_CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "uniform")  # torch's kaiming_uniform_


class Fire(nn.Module):
  """squeeze 1×1 → ReLU → [expand 1×1 → ReLU ‖ expand 3×3 → ReLU] (channel concat)."""

  squeeze: int
  expand1x1: int
  expand3x3: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = lambda f, k, name: nn.Conv(f, (k, k), padding=[(k // 2, k // 2)] * 2, kernel_init=_CONV_INIT,  # noqa: E731
                                      dtype=self.dtype, param_dtype=jnp.float32, name=name,
                                      conv_general_dilated=cpu_gradients.conv_general_dilated)
    s = nn.relu(conv(self.squeeze, 1, "squeeze")(x))
    return jnp.concatenate([nn.relu(conv(self.expand1x1, 1, "expand1x1")(s)),
                            nn.relu(conv(self.expand3x3, 3, "expand3x3")(s))], axis=-1)


class SqueezeNet(nn.Module):
  """SqueezeNet 1.0 / 1.1; set from `config.model` by `models.build_model`."""

  num_classes: int = 1000
  version: str = "1_0"
  width: float = 1.0
  dropout: float = 0.5
  conv1_stride: int = 2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.version not in VERSIONS:
      raise ValueError(f"SqueezeNet version must be one of {sorted(VERSIONS)}, got {self.version!r}.")
    stem, kernel, pool_after = VERSIONS[self.version]
    x = x.astype(self.dtype)
    x = nn.Conv(layers.scaled(stem, self.width), (kernel, kernel), strides=(self.conv1_stride,) * 2,
                padding="VALID", kernel_init=_CONV_INIT, dtype=self.dtype,
                param_dtype=jnp.float32, name="conv1")(x)
    x = layers.max_pool(nn.relu(x), 3, 2, ceil_mode=True)
    for i, (s, e1, e3) in enumerate(FIRES, start=2):
      x = Fire(layers.scaled(s, self.width), layers.scaled(e1, self.width), layers.scaled(e3, self.width), self.dtype,
               name=f"fire{i}")(x)
      if i in pool_after:
        x = layers.max_pool(x, 3, 2, ceil_mode=True)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.Conv(self.num_classes, (1, 1), kernel_init=nn.initializers.normal(0.01), dtype=self.dtype,
                param_dtype=jnp.float32, name="conv10", conv_general_dilated=cpu_gradients.conv_general_dilated)(x)
    # Average in float32 whatever the compute dtype.
    return layers.global_avg_pool(nn.relu(x).astype(jnp.float32))
