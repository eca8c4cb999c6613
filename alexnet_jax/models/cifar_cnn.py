"""The four-layer CIFAR-10 network of AlexNet's Figure 1 (Krizhevsky et al. 2012, Sec. 3.1).

The paper shows that "a four-layer convolutional neural network with ReLUs reaches a 25%
training error rate on CIFAR-10 six times faster than an equivalent network with tanh
neurons", but does not list the network. This is a documented reconstruction in the style
of the cuda-convnet CIFAR-10 example nets of the time (three 5×5 convolutional layers of
32, 32 and 64 channels, each followed by 3×3 stride-2 pooling, then one fully-connected
layer to the classes: four weight layers). Differences from those nets, chosen for
simplicity and stated here so nobody mistakes them for the original: every pooling layer
is max pooling (with torch-style ceil_mode so 32 → 16 → 8 → 4), there is no response
normalisation, and initialisation is by name (`init`, the same for both activations so
that the activation is the only difference between the Figure 1 curves).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax.models import layers


class CifarCNN(nn.Module):
  """conv5×5-pool ×3 → dense; the activation is the Figure 1 variable."""

  num_classes: int
  channels: Sequence[int] = (32, 32, 64)
  kernel: int = 5
  pool_window: int = 3
  pool_stride: int = 2
  act: str = "relu"
  init_scheme: str = "lecun"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no dropout or BatchNorm: the Figure 1 nets had neither
    act = layers.activation(self.act)
    init = layers.kernel_init(self.init_scheme)
    x = x.astype(self.dtype)
    for i, ch in enumerate(self.channels):
      pad = self.kernel // 2
      x = layers.Conv(ch, (self.kernel, self.kernel), padding=pad, kernel_init=init,
                      dtype=self.dtype, name=f"conv{i + 1}")(x)
      x = act(x)
      x = layers.max_pool(x, self.pool_window, self.pool_stride, ceil_mode=True)
    x = x.reshape((x.shape[0], -1))
    x = nn.Dense(self.num_classes, kernel_init=init, dtype=self.dtype, param_dtype=jnp.float32,
                 name="fc")(x)
    return x.astype(jnp.float32)
