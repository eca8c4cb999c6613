"""ResNet (He et al. 2015), ResNeXt (Xie et al. 2017) and SE-ResNet (Hu et al. 2018).

One module covers the three families because they share the skeleton and differ only
inside the residual block:

  stem      7×7/2 conv-BN-ReLU → 3×3/2 max-pool (pad 1)           ('imagenet')
            or three 3×3 conv-BN-ReLU (32·w, 32·w, 64·w channels, the first
            with stride 2) → 3×3/2 max-pool                        ('deep', ResNet-C)
            or a 3×3 conv-BN-ReLU and no pool, for 32-64 px inputs  ('small')
  stages    widths 64·w, 128·w, 256·w, 512·w; the first block of stages 2-4 halves
            the resolution; a 1×1 conv + BN projection shortcut wherever the shape changes
  head      global average pool → fully connected → logits (float32)

Blocks:
  basic       3×3 → 3×3 (ResNet-18/34), expansion 1
  bottleneck  1×1 reduce → 3×3 → 1×1 expand ×4 (ResNet-50/101/152). The inner width is
              floor(planes · width_per_group / 64) · groups: plain ResNet is groups=1,
              width_per_group=64; ResNeXt-50 32×4d is groups=32, width_per_group=4,
              where the 3×3 conv becomes a grouped conv with 32 groups.
  se          squeeze-and-excitation on the residual branch, after its last BN and before
              the addition: global pool → FC C/r → ReLU → FC C → sigmoid → channel scale.

ResNet-D (He et al., "Bag of Tricks for Image Classification with CNNs", CVPR 2019) is
`stem='deep'` with `avg_down=True`: a downsampling shortcut becomes a 2×2/2 average pool
(ceil mode, padding not counted) then a stride-1 1×1 conv + BN, so the shortcut sees every
input position instead of one in four. (ResNet-B, the stride on the 3×3 conv, is the
default `stride_on_3x3=True`.)

Stride placement: the paper ("v1") strides the first 1×1 conv of a downsampling
bottleneck; torchvision ("v1.5", the default here, `stride_on_3x3=True`) strides the
3×3 conv instead, which costs a little compute and gains about 0.5% top-1.

Parameter names mirror torchvision's (`stem`, `layer{1-4}_{block}` with `conv1..3`,
`downsample`, `se`, and `head/fc`) so the converter in `alexnet_jax.torch_convert.resnet`
is a rename plus layout changes.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax import model_choices
from alexnet_jax.models import cpu_gradients, layers

DEPTHS = model_choices.RESNET_STAGES  # depth → (block type, blocks per stage)
STAGE_PLANES = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}
STEMS = model_choices.FIELDS["stem"]


def stage_spec(depth: int) -> tuple[str, tuple[int, ...]]:
  """The block type and blocks per stage for `depth`, with a clear error otherwise."""
  if depth not in DEPTHS:
    raise ValueError(f"ResNet depth {depth} is not defined; choose one of {sorted(DEPTHS)}.")
  return DEPTHS[depth]


def bottleneck_width(planes: int, groups: int, width_per_group: int) -> int:
  """Inner width of a (ResNeXt) bottleneck: floor(planes · width_per_group / 64) · groups."""
  return int(planes * (width_per_group / 64.0)) * groups


def torch_linear_init(fan_in: int) -> tuple[nn.initializers.Initializer, nn.initializers.Initializer]:
  """torch.nn.Linear's default init, U(±1/√fan_in) for weight and bias, as torchvision's fc.

  Kaiming-uniform with a=√5 reduces to exactly this bound for the weight.
  """
  bound = 1.0 / math.sqrt(fan_in)

  def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init, init


class SqueezeExcite(nn.Module):
  """Channel gating of Hu et al. (SENet): x · σ(W2 ReLU(W1 mean_hw(x))).

  The two FCs have biases, as in the paper's reference code, so the parameter count
  matches the published SE-ResNet-50 total.
  """

  reduction: int = 16
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    hidden = max(1, channels // self.reduction)
    s = jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
    s = nn.Dense(hidden, dtype=self.dtype, param_dtype=jnp.float32, name="fc1")(s)
    s = nn.relu(s)
    s = nn.Dense(channels, dtype=self.dtype, param_dtype=jnp.float32, name="fc2")(s)
    return x * nn.sigmoid(s)[:, None, None, :].astype(x.dtype)


class ResidualBlock(nn.Module):
  """One basic or bottleneck block; `kind` picks which (see the module docstring)."""

  planes: int
  kind: str = "bottleneck"
  stride: int = 1
  groups: int = 1
  width_per_group: int = 64
  stride_on_3x3: bool = True
  zero_init_residual: bool = False
  se: bool = False
  se_reduction: int = 16
  avg_down: bool = False
  dtype: Any = jnp.float32

  def _conv(self, features: int, kernel: int, stride: int, name: str, groups: int = 1,
            act: str | None = "relu", last: bool = False) -> layers.ConvBNAct:
    # Torch padding (k//2 on both sides), not 'SAME': the two differ for stride 2 on even sizes.
    return layers.ConvBNAct(
        features, kernel, stride=stride, padding=kernel // 2, groups=groups, act=act,
        kernel_init=layers.kernel_init("he"), bn_zero_init=last and self.zero_init_residual,
        dtype=self.dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    out_features = self.planes * EXPANSION[self.kind]
    if self.kind == "basic":
      if self.groups != 1 or self.width_per_group != 64:
        raise ValueError("Basic blocks (depth 18/34) support only groups=1 and width_per_group=64; "
                         "use depth >= 50 for ResNeXt.")
      y = self._conv(self.planes, 3, self.stride, "conv1")(x, train)
      y = self._conv(self.planes, 3, 1, "conv2", act=None, last=True)(y, train)
    elif self.kind == "bottleneck":
      inner = bottleneck_width(self.planes, self.groups, self.width_per_group)
      if inner < self.groups:
        raise ValueError(f"Bottleneck width {inner} is smaller than groups={self.groups}; raise the "
                         "width multiplier or width_per_group.")
      s1, s3 = (1, self.stride) if self.stride_on_3x3 else (self.stride, 1)
      y = self._conv(inner, 1, s1, "conv1")(x, train)
      y = self._conv(inner, 3, s3, "conv2", groups=self.groups)(y, train)
      y = self._conv(out_features, 1, 1, "conv3", act=None, last=True)(y, train)
    else:
      raise ValueError(f"Unknown block kind {self.kind!r}; choose 'basic' or 'bottleneck'.")
    if self.se:
      y = SqueezeExcite(self.se_reduction, dtype=self.dtype, name="se")(y)
    shortcut = x
    if self.stride != 1 or x.shape[-1] != out_features:
      stride = self.stride
      if self.avg_down and stride != 1:  # ResNet-D: pool first, then a stride-1 projection
        shortcut = nn.avg_pool(shortcut, (stride, stride), strides=(stride, stride), padding="SAME",
                               count_include_pad=False)
        stride = 1
      shortcut = self._conv(out_features, 1, stride, "downsample", act=None)(shortcut, train)
    # Stored once: left to fusion, XLA:CPU recomputes the chain of batch norms, additions and
    # ReLUs behind a block's output inside each consumer (BENCHMARKS.md).
    out = nn.relu(y + shortcut)
    return cpu_gradients.stored(out) if train else out


class ResNet(nn.Module):
  """ResNet / ResNeXt / SE-ResNet; every field is set from `config.model` by `models.build_model`."""

  num_classes: int = 1000
  depth: int = 50
  groups: int = 1
  width_per_group: int = 64
  width: float = 1.0
  se: bool = False
  se_reduction: int = 16
  stride_on_3x3: bool = True
  zero_init_residual: bool = False
  stem: str = "imagenet"
  stem_stride: int = 1  # 'small' stem only: 2 halves the resolution before stage 1
  avg_down: bool = False  # ResNet-D shortcuts (see the module docstring)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    kind, blocks = stage_spec(self.depth)
    if self.stem not in STEMS:
      raise ValueError(f"model.stem must be one of {STEMS}, got {self.stem!r}.")
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"ResNet expects NHWC RGB images of shape (batch, H, W, 3), got {x.shape}.")
    x = x.astype(self.dtype)
    stem_features = layers.scaled(64, self.width)
    if self.stem == "imagenet":
      x = layers.ConvBNAct(stem_features, 7, stride=2, padding=3, kernel_init=layers.kernel_init("he"),
                           dtype=self.dtype, name="stem")(x, train)
      x = layers.max_pool(x, 3, 2, padding=((1, 1), (1, 1)))
    elif self.stem == "deep":
      for i, (features, stride) in enumerate(((layers.scaled(32, self.width), 2), (layers.scaled(32, self.width), 1),
                                              (stem_features, 1)), start=1):
        x = layers.ConvBNAct(features, 3, stride=stride, padding=1, kernel_init=layers.kernel_init("he"),
                             dtype=self.dtype, name=f"stem{i}")(x, train)
      x = layers.max_pool(x, 3, 2, padding=((1, 1), (1, 1)))
    else:
      x = layers.ConvBNAct(stem_features, 3, stride=self.stem_stride, padding=1,
                           kernel_init=layers.kernel_init("he"), dtype=self.dtype, name="stem")(x, train)
    for stage, (planes, count) in enumerate(zip(STAGE_PLANES, blocks), start=1):
      for index in range(count):
        x = ResidualBlock(
            layers.scaled(planes, self.width), kind=kind,
            stride=2 if stage > 1 and index == 0 else 1,
            groups=self.groups, width_per_group=self.width_per_group,
            stride_on_3x3=self.stride_on_3x3, zero_init_residual=self.zero_init_residual,
            se=self.se, se_reduction=self.se_reduction, avg_down=self.avg_down, dtype=self.dtype,
            name=f"layer{stage}_{index}")(x, train)
    x = layers.global_avg_pool(x.astype(jnp.float32))
    kinit, binit = torch_linear_init(x.shape[-1])
    return layers.Classifier(self.num_classes, kernel_init=kinit, bias_init=binit, dtype=self.dtype,
                             name="head")(x, train)
