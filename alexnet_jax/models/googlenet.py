"""GoogLeNet / Inception-v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

Twenty-two layers built from inception modules: four parallel branches (1×1; 1×1 →
3×3; 1×1 → 5×5; 3×3 max-pool → 1×1) concatenated along channels, the 1×1
"reductions" keeping the compute at ~1.5 G multiply-adds. Two auxiliary classifiers
on the outputs of inception 4a and 4d (`aux_pool`: the paper's 5×5 average pool with
stride 3, or torchvision's adaptive average pool to 4×4; both give 4×4 at 224 px; 1×1 conv 128, fc 1024, dropout 0.7, fc) add their loss during training
only; here they are `sow`n into the 'aux' collection when `train=True` and the
trainer weights them by `config.aux_loss_weight` (0.3 in the paper).

Defaults reproduce torchvision's `googlenet`, so its checkpoints convert exactly:
every conv is conv (no bias) → BatchNorm (eps 1e-3) → ReLU, the third branch uses
a 3×3 conv where the paper has 5×5, no LRN, dropout 0.2 before the classifier, and
ceil-mode max-pools (2×2/2 after inception 4e). The paper's network is `bn=False,
branch3_kernel=5, lrn=True, dropout=0.4, aux_pool='avg5s3', pool4_window=3` (LRN after the
stem's first pool and after the second conv stage; a 3×3/2 max-pool after inception 4e).

torchvision's `transform_input` only re-normalises the input; our pipeline feeds
images normalised by the config's mean/std instead (see configs/googlenet.py).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax import model_choices
from alexnet_jax.models import layers

# name → (1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool proj), as Table 1 of the paper.
INCEPTIONS = (
    ("inception3a", (64, 96, 128, 16, 32, 32)),
    ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("inception4a", (192, 96, 208, 16, 48, 64)),
    ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception4c", (128, 128, 256, 24, 64, 64)),
    ("inception4d", (112, 144, 288, 32, 64, 64)),
    ("inception4e", (256, 160, 320, 32, 128, 128)),
    ("inception5a", (256, 160, 320, 32, 128, 128)),
    ("inception5b", (384, 192, 384, 48, 128, 128)),
)
# Max-pool (stride 2) after inception 3b (3×3) and 4e (`pool4_window`), and aux heads.
POOL_AFTER = ("inception3b", "inception4e")
AUX_AFTER = {"inception4a": "aux1", "inception4d": "aux2"}


def conv_init(scheme: str) -> nn.initializers.Initializer:
  """'torchvision' is its truncated N(0, 0.01); anything else is a `layers.kernel_init` scheme."""
  if scheme == "torchvision":
    return nn.initializers.truncated_normal(0.01)
  return layers.kernel_init(scheme)


class Inception(nn.Module):
  """One inception module: four branches concatenated along channels."""

  channels: tuple[int, int, int, int, int, int]
  bn: bool = True
  branch3_kernel: int = 3
  init_scheme: str = "torchvision"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    c1, c3r, c3, c5r, c5, cp = self.channels
    block = lambda f, k, name: layers.ConvBNAct(
        f, k, 1, k // 2, bn=self.bn, bn_epsilon=1e-3, kernel_init=conv_init(self.init_scheme),
        dtype=self.dtype, name=name)
    b1 = block(c1, 1, "branch1")(x, train)
    b2 = block(c3, 3, "branch2")(block(c3r, 1, "branch2_reduce")(x, train), train)
    k = self.branch3_kernel
    b3 = block(c5, k, "branch3")(block(c5r, 1, "branch3_reduce")(x, train), train)
    pooled = layers.max_pool(x, 3, 1, padding=((1, 1), (1, 1)))
    b4 = block(cp, 1, "branch4")(pooled, train)
    return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class AuxHead(nn.Module):
  """Auxiliary classifier: 4×4 average pool → 1×1 conv 128 → fc 1024 → ReLU → dropout 0.7 → fc."""

  num_classes: int
  width: float = 1.0
  bn: bool = True
  init_scheme: str = "torchvision"
  dropout: float = 0.7
  pool: str = "adaptive"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = layers.adaptive_avg_pool(x, 4) if self.pool == "adaptive" else layers.avg_pool(x, 5, 3)
    x = layers.ConvBNAct(layers.scaled(128, self.width), 1, 1, 0, bn=self.bn, bn_epsilon=1e-3,
                         kernel_init=conv_init(self.init_scheme), dtype=self.dtype, name="conv")(x, train)
    x = x.reshape((x.shape[0], -1))
    dense = lambda f, name: nn.Dense(f, kernel_init=conv_init(self.init_scheme), dtype=self.dtype,
                                     param_dtype=jnp.float32, name=name)
    x = nn.relu(dense(layers.scaled(1024, self.width), "fc1")(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return dense(self.num_classes, "fc2")(x).astype(jnp.float32)


class GoogLeNet(nn.Module):
  """GoogLeNet; every field is set from `config.model` by `models.build_model`."""

  num_classes: int = 1000
  width: float = 1.0
  bn: bool = True
  branch3_kernel: int = 3
  lrn: bool = False
  aux_logits: bool = True
  dropout: float = 0.2
  aux_dropout: float = 0.7
  init_scheme: str = "torchvision"
  conv1_stride: int = 2
  aux_pool: str = "adaptive"   # adaptive (torchvision) | avg5s3 (the paper's 5×5/3 average pool)
  pool4_window: int = 2        # max-pool after inception 4e: 2 (torchvision) or 3 (the paper), stride 2
  dtype: Any = jnp.float32

  def _conv(self, features: int, kernel: int, stride: int, name: str) -> layers.ConvBNAct:
    return layers.ConvBNAct(layers.scaled(features, self.width), kernel, stride, kernel // 2, bn=self.bn,
                            bn_epsilon=1e-3, kernel_init=conv_init(self.init_scheme), dtype=self.dtype, name=name)

  def _lrn(self, x: jax.Array, name: str) -> jax.Array:
    # Caffe's LRN (size 5, alpha 1e-4 over n, beta 0.75, k 1) in our sum-based convention.
    return layers.LocalResponseNorm(5, 1.0, 1e-4 / 5, 0.75, name=name)(x) if self.lrn else x

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.branch3_kernel not in model_choices.FIELDS["branch3_kernel"]:
      raise ValueError(f"branch3_kernel must be 3 (torchvision) or 5 (paper), got {self.branch3_kernel}.")
    x = x.astype(self.dtype)
    x = self._conv(64, 7, self.conv1_stride, "conv1")(x, train)
    x = self._lrn(layers.max_pool(x, 3, 2, ceil_mode=True), "lrn1")
    x = self._conv(64, 1, 1, "conv2")(x, train)
    x = self._lrn(self._conv(192, 3, 1, "conv3")(x, train), "lrn2")
    x = layers.max_pool(x, 3, 2, ceil_mode=True)
    # Aux heads only run in training, but their parameters must exist from init on.
    run_aux = self.aux_logits and (train or self.is_initializing())
    for name, channels in INCEPTIONS:
      x = Inception(tuple(layers.scaled(c, self.width) for c in channels), self.bn, self.branch3_kernel,
                    self.init_scheme, self.dtype, name=name)(x, train)
      if name in POOL_AFTER:
        x = layers.max_pool(x, 3 if name == "inception3b" else self.pool4_window, 2, ceil_mode=True)
      if run_aux and name in AUX_AFTER:
        aux = AuxHead(self.num_classes, self.width, self.bn, self.init_scheme, self.aux_dropout, self.aux_pool,
                      self.dtype, name=AUX_AFTER[name])(x, train)
        if train:
          self.sow("aux", "logits", aux)
    x = layers.global_avg_pool(x.astype(jnp.float32)).astype(self.dtype)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, kernel_init=conv_init(self.init_scheme), dtype=self.dtype,
                 param_dtype=jnp.float32, name="fc")(x)
    return x.astype(jnp.float32)
