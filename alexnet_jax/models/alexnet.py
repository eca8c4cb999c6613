"""AlexNet (Krizhevsky, Sutskever & Hinton, NeurIPS 2012), faithful to the paper.

Layer by layer (paper variant, `towers=2`):

  conv1 96×11×11/4 → act → LRN → max-pool 3/2
  conv2 256×5×5, two towers (groups=2) → act → LRN → max-pool 3/2
  conv3 384×3×3 across both towers
  conv4 384×3×3, two towers;  conv5 256×3×3, two towers → max-pool 3/2
  fc6 4096 → act → dropout;  fc7 4096 → act → dropout;  fc8 → classes

The 2012 model was split over two GPUs; its "towers" only exchange activations at
conv3 and the FC layers. On one device the same function is a grouped convolution
(`feature_group_count=2`), which is how it is written here. The "one weird trick"
variant (Krizhevsky 2014, torchvision's `alexnet`) is 64-192-384-256-256; its config
sets no LRN and one tower. LRN windows run across both towers' channels unless
`tower_lrn` keeps them inside each tower.

The paper's one-GPU comparison net (Sec. 3.2 and its footnote) is `towers=1, half_kernels=True`:
one tower with half the kernels of conv1-conv4 (48-128-192-192), while conv5 (256) and the fully
connected layers keep their size, so the two nets have about the same number of parameters.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax.models import layers

# (features, kernel, padding, groups-if-towered) per conv layer; pooling after 1, 2 and 5.
PAPER_CONVS = ((96, 11, None, False), (256, 5, 2, True), (384, 3, 1, False), (384, 3, 1, True), (256, 3, 1, True))
OWT_CONVS = ((64, 11, None, False), (192, 5, 2, False), (384, 3, 1, False), (256, 3, 1, False), (256, 3, 1, False))
VARIANTS = {"paper": PAPER_CONVS, "owt": OWT_CONVS}
# The paper initialises these biases to 1 so the ReLUs start in their positive region.
BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")
# The layers the one-GPU net halves (`half_kernels`); conv5 and the FC layers keep their width.
HALVED = (1, 2, 3, 4)


class AlexNet(nn.Module):
  """AlexNet; `config.model` holds exactly these fields (see configs/alexnet.py)."""

  num_classes: int = 1000
  variant: str = "paper"
  towers: int = 2
  width: float = 1.0
  fc_dim: int = 4096
  lrn: bool = True
  tower_lrn: bool = False
  lrn_size: int = 5
  lrn_k: float = 2.0
  lrn_alpha: float = 1e-4
  lrn_beta: float = 0.75
  pool_window: int = 3
  pool_stride: int = 2
  dropout: float = 0.5
  act: str = "relu"
  init_scheme: str = "paper"
  init_std: float = 0.01
  conv1_kernel: int = 11
  conv1_stride: int = 4
  conv1_padding: int = 0
  remove_conv: int = 0
  half_kernels: bool = False
  dtype: Any = jnp.float32

  def _inits(self, name: str):
    kinit = layers.kernel_init(self.init_scheme, self.init_std)
    one = self.init_scheme == "paper" and name in BIAS_ONE
    binit = nn.initializers.ones if one else nn.initializers.zeros
    return kinit, binit

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    # The layers are declared in `_forward`, an undecorated method called inside this compact one (so they
    # are this module's submodules, named as before): mutation testing skips decorated functions.
    return self._forward(x, train)

  def _forward(self, x: jax.Array, train: bool) -> jax.Array:
    act = layers.activation(self.act)
    x = x.astype(self.dtype)
    for i, (features, kernel, pad, towered) in enumerate(VARIANTS[self.variant], start=1):
      name = f"conv{i}"
      if i == 1:
        kernel, stride, pad = self.conv1_kernel, self.conv1_stride, self.conv1_padding
      else:
        stride = 1
      if i != self.remove_conv:
        kinit, binit = self._inits(name)
        if self.half_kernels and i in HALVED:
          features //= 2
        x = layers.Conv(
            layers.scaled(features, self.width), (kernel, kernel), strides=(stride, stride),
            padding=pad, groups=self.towers if towered else 1,
            kernel_init=kinit, bias_init=binit, dtype=self.dtype, name=name)(x)
        x = act(x)
        if self.lrn and i in (1, 2):
          # In the 2012 net each GPU held half of conv1 and conv2 and normalised its own maps.
          groups = self.towers if self.tower_lrn else 1
          x = layers.LocalResponseNorm(self.lrn_size, self.lrn_k, self.lrn_alpha, self.lrn_beta, groups,
                                       name=f"lrn{i}")(x)
      if i in (1, 2, 5):
        x = layers.max_pool(x, self.pool_window, self.pool_stride)
    x = x.reshape((x.shape[0], -1))
    fc_dim = layers.scaled(self.fc_dim, self.width)
    for name in ("fc6", "fc7"):
      kinit, binit = self._inits(name)
      x = nn.Dense(fc_dim, kernel_init=kinit, bias_init=binit, dtype=self.dtype,
                   param_dtype=jnp.float32, name=name)(x)
      x = act(x)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    kinit, binit = self._inits("fc8")
    x = nn.Dense(self.num_classes, kernel_init=kinit, bias_init=binit, dtype=self.dtype,
                 param_dtype=jnp.float32, name="fc8")(x)
    return x.astype(jnp.float32)
