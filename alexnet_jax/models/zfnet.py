"""ZFNet (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014).

AlexNet revised after looking at its deconvnet visualisations: a smaller, denser
first layer (7×7 stride 2 instead of 11×11 stride 4, which had left dead filters and
aliasing) and a stride-2 conv2, with one tower instead of two (Fig. 3):

  conv1 96×7×7/2 → ReLU → max-pool 3/2 → contrast normalisation
  conv2 256×5×5/2 → ReLU → max-pool 3/2 → contrast normalisation
  conv3 384×3×3, conv4 384×3×3, conv5 256×3×3 → max-pool 3/2
  fc6 4096 → ReLU → dropout 0.5;  fc7 4096 → ReLU → dropout 0.5;  fc8 → classes

The paper's "local contrast normalisation across feature maps" is the shared
`LocalResponseNorm` (AlexNet's constants, since the paper gives none). With
conv1 padding 1 and ceil-mode pooling (Caffe's rounding) the map sizes are the
paper's 224 → 110 → 55 → 26 → 13 → 13 → 13 → 6. The paper also renormalised any
conv filter whose RMS exceeded 0.1; that is a training-time constraint not modelled here.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax.models import cpu_gradients, layers

# (features, kernel, stride, padding) for conv2..conv5; conv1 comes from the config.
CONVS = ((256, 5, 2, 0), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1))


class ZFNet(nn.Module):
  """ZFNet; every field is set from `config.model` from `config.model`."""

  num_classes: int = 1000
  width: float = 1.0
  fc_dim: int = 4096
  lrn: bool = True
  lrn_size: int = 5
  lrn_k: float = 2.0
  lrn_alpha: float = 1e-4
  lrn_beta: float = 0.75
  dropout: float = 0.5
  act: str = "relu"
  init_scheme: str = "paper"
  init_std: float = 0.01
  conv1_kernel: int = 7
  conv1_stride: int = 2
  conv1_padding: int = 1
  conv2_stride: int = 2
  dtype: Any = jnp.float32

  def _channels(self, features: int) -> int:
    return layers.scaled(features, self.width)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    act = layers.activation(self.act)
    # The paper initialises weights to 1e-2 and biases to 0.
    kinit = layers.kernel_init(self.init_scheme, self.init_std)
    x = x.astype(self.dtype)
    geometry = [(96, self.conv1_kernel, self.conv1_stride, self.conv1_padding)]
    geometry += [(CONVS[0][0], CONVS[0][1], self.conv2_stride, CONVS[0][3])] + list(CONVS[1:])
    for i, (features, kernel, stride, pad) in enumerate(geometry, start=1):
      x = nn.Conv(self._channels(features), (kernel, kernel), strides=(stride, stride),
                  padding=[(pad, pad), (pad, pad)], kernel_init=kinit,
                  conv_general_dilated=cpu_gradients.conv_general_dilated, dtype=self.dtype,
                  param_dtype=jnp.float32, name=f"conv{i}")(x)
      x = act(x)
      if i in (1, 2, 5):
        x = layers.max_pool(x, 3, 2, ceil_mode=True)
      if self.lrn and i in (1, 2):
        x = layers.LocalResponseNorm(self.lrn_size, self.lrn_k, self.lrn_alpha, self.lrn_beta,
                                     name=f"lrn{i}")(x)
    x = x.reshape((x.shape[0], -1))
    for name in ("fc6", "fc7"):
      x = nn.Dense(self._channels(self.fc_dim), kernel_init=kinit, dtype=self.dtype,
                   param_dtype=jnp.float32, name=name)(x)
      x = act(x)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, kernel_init=kinit, dtype=self.dtype,
                 param_dtype=jnp.float32, name="fc8")(x)
    return x.astype(jnp.float32)
