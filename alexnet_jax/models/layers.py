"""Building blocks shared by every model family.

One place for: local response normalisation, initialisers, activations, the width
multiplier (`scaled`), the conv-BN-act block and the pooling helpers. Families import from here instead of
re-implementing them, so an ablation of e.g. LRN behaves identically everywhere.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence

from absl import logging
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from alexnet_jax import model_choices
from alexnet_jax.models import cpu_gradients

Dtype = Any

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "gelu": nn.gelu,
    "sigmoid": nn.sigmoid,
}


def scaled(features: int, width: float) -> int:
  """A channel count under the width multiplier `width` (rounded, never below 1)."""
  return max(1, int(round(features * width)))


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
  """Returns the activation called `name`, with a clear error for unknown names."""
  try:
    return ACTIVATIONS[name]
  except KeyError:
    raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.") from None


INIT_SCHEMES = model_choices.INIT_SCHEMES


def kernel_init(scheme: str, std: float = 0.01) -> nn.initializers.Initializer:
  """Weight initialiser by name.

  'paper' is AlexNet's N(0, std); 'he' is Kaiming-normal (fan_out, as torchvision
  ResNet); 'he_in' Kaiming fan_in; 'lecun' and 'xavier' are the usual ones.
  """
  if scheme == "paper":
    return nn.initializers.normal(stddev=std)
  if scheme == "he":
    return nn.initializers.variance_scaling(2.0, "fan_out", "normal")
  if scheme == "he_in":
    return nn.initializers.variance_scaling(2.0, "fan_in", "normal")
  if scheme == "lecun":
    return nn.initializers.lecun_normal()
  if scheme == "xavier":
    return nn.initializers.xavier_uniform()
  raise ValueError(f"Unknown init scheme {scheme!r}; choose paper, he, he_in, lecun or xavier.")


class LocalResponseNorm(nn.Module):
  """Local response normalisation across channels (Krizhevsky et al. 2012, Sec. 3.3).

      b[c] = a[c] / (k + alpha * sum_{c' in window(c)} a[c']**2) ** beta

  The window holds `size` (the paper's n) adjacent channels centred on c,
  clipped at the edges. As in the paper (and tf.nn.local_response_normalization),
  alpha multiplies the plain sum; Caffe and torch.nn.LocalResponseNorm divide alpha
  by n instead, so their alpha is n times ours. With `groups > 1` the channels are
  split into that many equal groups (towers) and windows stay inside their group.

  The median of alpha·Σa²/k over the batch is `sow`n into 'intermediates' as
  `norm_term` (see `lrn_terms`): when it is far below 1 the layer is a fixed gain k^-beta.
  """

  size: int = 5
  k: float = 2.0
  alpha: float = 1e-4
  beta: float = 0.75
  groups: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    # The body is `_forward`, an undecorated method called inside this compact one (its parameters,
    # submodules and sown values are this module's, named as before): mutation testing skips decorated
    # functions.
    return self._forward(x)

  def _forward(self, x: jax.Array) -> jax.Array:
    half = (self.size - 1) // 2
    sq = jnp.square(x.astype(jnp.float32))
    channels = x.shape[-1] // self.groups
    sq = sq.reshape(*x.shape[:-1], self.groups, channels)
    padded = jnp.pad(sq, [(0, 0)] * (sq.ndim - 1) + [(half, self.size - 1 - half)])
    # A sum of `size` shifted slices: cheap on every backend, unlike reduce_window
    # over the feature axis on CPU.
    window_sum = sum(padded[..., i:i + channels] for i in range(self.size)).reshape(x.shape)
    term = self.alpha * window_sum
    self.sow("intermediates", "norm_term", jnp.median(term) / self.k)
    # denom ** -beta through exp/log keeps one fused elementwise op.
    scale = jnp.exp(-self.beta * jnp.log(self.k + term))
    return (x.astype(jnp.float32) * scale).astype(x.dtype)


def lrn_term_arrays(model: nn.Module, variables: Any, images: jax.Array) -> dict[str, jax.Array]:
  """{LRN layer name: median of alpha·Σa²/k} for `images`, as arrays (traceable, for use inside `jax.jit`)."""
  _, state = model.apply(variables, images, train=False, mutable=["intermediates"])
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(state.get("intermediates", {})), sep="/")
  return {path.rsplit("/", 1)[0]: value[0] for path, value in flat.items() if path.endswith("norm_term")}


def lrn_terms(model: nn.Module, variables: Any, images: jax.Array) -> dict[str, float]:
  """{LRN layer name: median of alpha·Σa²/k} for `images`: the size of LRN's normalisation term.
  One compiled program (run op by op, the forward pass would compile each of its ~90 operations)."""
  terms = jax.jit(functools.partial(lrn_term_arrays, model))(variables, images)
  return {k: float(v) for k, v in terms.items()}


def reports_lrn_terms(model: nn.Module) -> bool:
  """Whether `model` has LRN layers whose terms are worth logging (LRN on, no BatchNorm)."""
  return bool(getattr(model, "lrn", False) and not getattr(model, "bn", False))


def log_lrn_terms(terms: dict[str, float]) -> None:
  """Logs `lrn_terms` (at a run's first step); does nothing when there are none."""
  if terms:
    logging.info("LRN normalisation term, median alpha*sum(a^2)/k per layer (<< 1: LRN is a fixed gain): %s",
                 ", ".join(f"{k} {v:.3g}" for k, v in terms.items()))


def ceil_mode_pads(shape: Sequence[int], window: int, stride: int) -> list[tuple[int, int]]:
  """The (low, high) padding of an NHWC `shape`'s two spatial axes that torch's ceil_mode=True implies."""
  pads = []
  for size in shape[1:3]:
    out = -(-(size - window) // stride) + 1
    if (out - 1) * stride >= size:  # torch drops a window that starts in the padding
      out -= 1
    pads.append((0, max(0, (out - 1) * stride + window - size)))
  return pads


def max_pool(x: jax.Array, window: int, stride: int, padding: Any = "VALID", ceil_mode: bool = False) -> jax.Array:
  """Max pooling of NHWC `x` (square window); ceil_mode pads on the high side like torch's
  ceil_mode=True. Same values and gradients as `nn.max_pool`, with a backward pass that
  XLA compiles to fused elementwise work (`cpu_gradients.max_pool`)."""
  if ceil_mode:
    padding = ceil_mode_pads(x.shape, window, stride)
  return cpu_gradients.max_pool(x, window, stride, padding)


def avg_pool(x: jax.Array, window: int, stride: int, padding: Any = "VALID") -> jax.Array:
  """Average pooling that divides by the full window, as torch's count_include_pad=True."""
  return nn.avg_pool(x, (window, window), (stride, stride), padding=padding, count_include_pad=True)


def global_avg_pool(x: jax.Array) -> jax.Array:
  return jnp.mean(x, axis=(1, 2))


def batch_norm(train: bool, dtype: Dtype, name: Optional[str] = None, zero_init: bool = False,
               momentum: float = 0.9, epsilon: float = 1e-5) -> nn.BatchNorm:
  """BatchNorm with torch-compatible defaults (momentum 0.1 in torch = 0.9 here, eps 1e-5).

  Under `jax.jit` over a device mesh the batch mean and variance are computed over
  the global (sharded) batch, so statistics are synchronised across devices.
  """
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=momentum,
      epsilon=epsilon,
      dtype=dtype,
      param_dtype=jnp.float32,
      scale_init=nn.initializers.zeros if zero_init else nn.initializers.ones,
      name=name,
  )


class Conv(nn.Module):
  """A 2-D convolution whose grouped form runs fast on every backend.

  Parameters are exactly those of `nn.Conv` ('kernel' HWIO with I = in/groups, 'bias'),
  so checkpoints, parameter counts and weight converters do not depend on the form.
  XLA:CPU runs `feature_group_count > 1` several times slower than the same work as one
  convolution per group, so on CPU the groups are split and GPUs and TPUs get the fused
  grouped convolution. Both compute the same function.
  """

  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: Any = "VALID"
  groups: int = 1
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    # The body is `_forward`, undecorated, as in LocalResponseNorm.
    return self._forward(x)

  def _forward(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    if cin % self.groups or self.features % self.groups:
      raise ValueError(f"Conv with groups={self.groups} needs input ({cin}) and output ({self.features}) "
                       "channels divisible by the group count.")
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, cin // self.groups, self.features), jnp.float32)
    pad = self.padding
    if isinstance(pad, int):
      pad = [(pad, pad), (pad, pad)]
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    dn = ("NHWC", "HWIO", "NHWC")
    if self.groups > 1 and jax.default_backend() == "cpu":
      xs = jnp.split(x, self.groups, axis=-1)
      ks = jnp.split(kernel, self.groups, axis=-1)
      y = jnp.concatenate([cpu_gradients.conv_general_dilated(a, k, self.strides, pad, dimension_numbers=dn)
                           for a, k in zip(xs, ks)], axis=-1)
    else:
      y = cpu_gradients.conv_general_dilated(x, kernel, self.strides, pad, dimension_numbers=dn,
                                             feature_group_count=self.groups)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32).astype(self.dtype)
    return y


class ConvBNAct(nn.Module):
  """Conv → (BatchNorm) → activation, the block every post-2014 family is built from.

  `padding` is an int (symmetric), 'SAME' or 'VALID'. With `bn=False` the conv has a
  bias; with `bn=True` it has none (the BN shift plays that role).
  """

  features: int
  kernel: int | Sequence[int] = 3
  stride: int = 1
  padding: Any = "SAME"
  groups: int = 1
  bn: bool = True
  act: Optional[str] = "relu"
  kernel_init: nn.initializers.Initializer = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
  bias_init: nn.initializers.Initializer = nn.initializers.zeros
  bn_zero_init: bool = False
  bn_epsilon: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    # The body is `_forward`, undecorated, as in LocalResponseNorm.
    return self._forward(x, train)

  def _forward(self, x: jax.Array, train: bool) -> jax.Array:
    kernel = (self.kernel, self.kernel) if isinstance(self.kernel, int) else tuple(self.kernel)
    pad = self.padding
    if isinstance(pad, int):
      pad = [(pad, pad), (pad, pad)]
    x = nn.Conv(
        self.features, kernel, strides=(self.stride, self.stride), padding=pad,
        feature_group_count=self.groups, use_bias=not self.bn,
        kernel_init=self.kernel_init, bias_init=self.bias_init,
        conv_general_dilated=cpu_gradients.conv_general_dilated,
        dtype=self.dtype, param_dtype=jnp.float32, name="conv")(x)
    if self.bn:
      x = batch_norm(train, self.dtype, name="bn", zero_init=self.bn_zero_init, epsilon=self.bn_epsilon)(x)
    if self.act is not None:
      x = activation(self.act)(x)
    return x


class Classifier(nn.Module):
  """Dropout → Dense head used at the end of every family."""

  num_classes: int
  dropout: float = 0.0
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    # The body is `_forward`, undecorated, as in LocalResponseNorm.
    return self._forward(x, train)

  def _forward(self, x: jax.Array, train: bool) -> jax.Array:
    if self.dropout > 0:
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, kernel_init=self.kernel_init, bias_init=self.bias_init,
                 dtype=self.dtype, param_dtype=jnp.float32, name="fc")(x)
    # Logits in float32 whatever the compute dtype: the loss and softmax need it.
    return x.astype(jnp.float32)


def _adaptive_weights(size: int, out: int) -> jnp.ndarray:
  """(out, size) averaging matrix of torch's adaptive pooling along one axis.

  Output cell i averages input cells floor(i·size/out) .. ceil((i+1)·size/out) − 1,
  so windows may overlap, and a map smaller than `out` is replicated.
  """
  rows = []
  for i in range(out):
    start, end = (i * size) // out, -(-((i + 1) * size) // out)
    rows.append([1.0 / (end - start) if start <= j < end else 0.0 for j in range(size)])
  return jnp.asarray(rows, jnp.float32)


def adaptive_avg_pool(x: jax.Array, output_size: int | Sequence[int]) -> jax.Array:
  """NHWC average pooling to a fixed spatial size, exactly as torch's AdaptiveAvgPool2d.

  Written as two small averaging matrices (static shapes, any input size), so it equals
  a plain average pool when the size divides evenly and an identity when it matches.
  """
  oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
  h, w = x.shape[1:3]
  if (h, w) == (oh, ow):
    return x
  wh = _adaptive_weights(h, oh).astype(x.dtype)
  ww = _adaptive_weights(w, ow).astype(x.dtype)
  return jnp.einsum("ih,jw,nhwc->nijc", wh, ww, x)
