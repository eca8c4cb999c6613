"""Pooling and convolutions written the way XLA:CPU runs them fast, computing the same functions.

On a 2-core CPU (BENCHMARKS.md, `python -m experiments.profile_step`) some of JAX's programs
compile to slow XLA:CPU code: max pooling's derivative (select-and-scatter, expanded into a
reduce-window over index arrays and a scatter), a 1×1 convolution's derivatives (for the
kernel, a convolution whose window is the whole feature map, behind transposes; for the
input, a convolution with a transposed copy of the kernel), and convolutions on small maps or
with a stride (YNNPACK is slow on few positions and does not take a strided convolution's
input gradient). `max_pool` and `conv_general_dilated` compute the same functions with custom
VJPs or as matrix products, on CPU only; `layers` uses them in every model.
`stored` keeps XLA from recomputing a residual block's output inside each of its consumers.
Which formulation is traced depends on the backend only, so a compiled step never depends on
state that jit's cache key does not see.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

def _active() -> bool:
  """Whether the formulations here apply: on CPU."""
  return jax.default_backend() == "cpu"


def _window_pads(x: jax.Array, window: int, stride: int, padding: Any) -> tuple[tuple[int, int], ...]:
  """(low, high) padding of the two spatial axes of an NHWC `x`, from 'VALID', 'SAME' or pairs."""
  if isinstance(padding, str):
    return tuple(jax.lax.padtype_to_pads(x.shape[1:3], (window, window), (stride, stride), padding))
  return tuple((int(lo), int(hi)) for lo, hi in padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x: jax.Array, window: int, stride: int, pads: tuple[tuple[int, int], ...]) -> jax.Array:
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1),
                               ((0, 0), *pads, (0, 0)))


def _max_pool_fwd(x, window, stride, pads):
  y = _max_pool(x, window, stride, pads)
  return y, (x, y)


def _max_pool_bwd(window, stride, pads, residual, g):
  """The gradient goes to the first maximum of each window in row-major order, as XLA's
  select-and-scatter (and torch's max_pool2d) choose it, computed from window offsets.

  XLA:CPU expands select-and-scatter into a variadic reduce-window over four index arrays
  and a scatter, which cost more than the convolutions of a small net; here the winning
  offset of each window is found by k² comparisons and each offset's share of `g` is placed
  back with an interior-padded `lax.pad`, all elementwise work that XLA fuses.
  """
  x, y = residual
  (plo, phi), (qlo, qhi) = pads
  xp = jnp.pad(x, ((0, 0), (plo, phi), (qlo, qhi), (0, 0)), constant_values=-jnp.inf)
  n, hp, wp, c = xp.shape
  ho, wo = y.shape[1:3]
  offsets = [(i, j) for i in range(window) for j in range(window)]

  def view(i, j):  # the input under offset (i, j) of every window, shaped like y
    return jax.lax.slice(xp, (0, i, j, 0), (n, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, c),
                         (1, stride, stride, 1))

  first = jnp.full(y.shape, len(offsets), jnp.int32)
  for k in reversed(range(len(offsets))):  # the smallest matching offset wins
    first = jnp.where(view(*offsets[k]) == y, k, first)
  first = jax.lax.optimization_barrier(first)  # computed once, not once per offset below
  zero = jnp.zeros((), g.dtype)
  dxp = jnp.zeros(xp.shape, g.dtype)
  # Last offset first: an input shared by several windows then sums their shares in the
  # windows' row-major order, the order select-and-scatter adds them in (same bits).
  for k, (i, j) in reversed(list(enumerate(offsets))):
    share = jnp.where(first == k, g, zero)
    cfg = ((0, 0, 0), (i, hp - i - stride * (ho - 1) - 1, stride - 1),
           (j, wp - j - stride * (wo - 1) - 1, stride - 1), (0, 0, 0))
    dxp = dxp + jax.lax.pad(share, zero, cfg)
  # Stored once: fused into a consumer that reads it at several shifts (LRN's backward reads
  # five channel offsets) the nine-term sum would be recomputed at each.
  return (jax.lax.optimization_barrier(dxp[:, plo:hp - phi, qlo:wp - qhi, :]),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x: jax.Array, window: int, stride: int, padding: Any = "VALID") -> jax.Array:
  """`nn.max_pool` of NHWC `x` over a square window, with the gradient of `_max_pool_bwd` on CPU
  (GPUs and TPUs keep XLA's select-and-scatter, which they run natively)."""
  if not _active():
    return nn.max_pool(x, (window, window), (stride, stride), padding=padding)
  return _max_pool(x, window, stride, _window_pads(x, window, stride, padding))


def stored(x: jax.Array) -> jax.Array:
  """`x`, computed once and stored on CPU (an optimization barrier).

  XLA fuses elementwise work into every consumer, so an activation read by the next layer's
  convolution and by the transpose that its kernel gradient needs is computed twice, and
  with residual connections the whole chain of batch norms, additions and ReLUs behind it is
  recomputed inside each consumer. Same values; no-op off CPU.
  """
  if not _active():
    return x
  return jax.lax.optimization_barrier(x)


_NHWC = ("NHWC", "HWIO", "NHWC")


# A k×k convolution becomes one matrix product over its patches (`_patch_conv`) when the
# product has at most this many rows (batch × output positions): at batch 8, ResNet-50's
# 7×7 and 4×4 stages and AlexNet's 13×13 layers. On so few positions YNNPACK's convolutions
# are slower than the product; on larger maps (28×28) the product is the slower one.
_PATCH_MAX_ROWS = 1600
# ... and when it is strided with at least this many input channels: the input gradient of a
# strided convolution needs base dilation, which YNNPACK does not take, so XLA runs it on
# Eigen, slower than the product.
_PATCH_STRIDED_MIN_CIN = 128


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _pointwise_conv(x: jax.Array, kernel: jax.Array, stride: int, precision: Any, out_dtype: Any) -> jax.Array:
  """A 1×1 convolution as one matrix product over batch × (strided) positions."""
  return _patch_conv(x, kernel, stride, ((0, 0), (0, 0)), precision, out_dtype)


def _pointwise_conv_fwd(x, kernel, stride, precision, out_dtype):
  return _pointwise_conv(x, kernel, stride, precision, out_dtype), (x, kernel)


def _pointwise_conv_bwd(stride, precision, out_dtype, residual, g):
  """Both gradients as matrix products over batch × positions, equal to JAX's up to float rounding.

  XLA:CPU computes a 1×1 kernel's gradient as a convolution whose window is the whole feature
  map, behind two transposes (slower than one product), and the input gradient as a
  convolution with a transposed copy of the kernel; `g · Wᵀ` reads the kernel as it is stored,
  with no copy. With a stride, the input gradient is spread back onto the strided
  positions by an interior-padded `lax.pad` (the positions the kernel never saw get zero).
  """
  x, kernel = residual
  cin, cout = kernel.shape[2:]
  rows = g.reshape(-1, cout)
  dx = jax.lax.dot_general(rows, kernel.reshape(cin, cout).astype(g.dtype), (((1,), (1,)), ((), ())),
                           precision=precision, preferred_element_type=out_dtype)
  dx = dx.reshape(*g.shape[:3], cin).astype(x.dtype)
  if stride > 1:
    (h, w), (ho, wo) = x.shape[1:3], g.shape[1:3]
    dx = jax.lax.pad(dx, jnp.zeros((), dx.dtype), ((0, 0, 0), (0, h - (ho - 1) * stride - 1, stride - 1),
                                                   (0, w - (wo - 1) * stride - 1, stride - 1), (0, 0, 0)))
  seen = x[:, ::stride, ::stride, :].reshape(-1, cin)
  dk = jax.lax.dot_general(seen, rows.astype(seen.dtype), (((0,), (0,)), ((), ())),
                           precision=precision, preferred_element_type=jnp.float32)
  return dx, dk.reshape(kernel.shape).astype(kernel.dtype)


_pointwise_conv.defvjp(_pointwise_conv_fwd, _pointwise_conv_bwd)


def _patch_conv(x: jax.Array, kernel: jax.Array, stride: int, pads: Sequence[tuple[int, int]], precision: Any,
                out_dtype: Any) -> jax.Array:
  """A k×k NHWC convolution as one matrix product: the k² shifted (strided) views of the padded
  input side by side (im2col), times the kernel as a (k²·in, out) matrix, whose (row, column,
  channel) order is HWIO's own. JAX differentiates it as written: the kernel gradient is one
  product with the patches, the input gradient a product with the kernel's transpose whose k²
  column blocks are added back at their offsets (elementwise work XLA fuses)."""
  kh, kw, cin, cout = kernel.shape
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  n, hp, wp, _ = xp.shape
  ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
  views = [jax.lax.slice(xp, (0, i, j, 0), (n, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, cin),
                         (1, stride, stride, 1)) for i in range(kh) for j in range(kw)]
  patches = jnp.concatenate(views, axis=-1).reshape(n * ho * wo, kh * kw * cin)
  y = jax.lax.dot_general(patches, kernel.reshape(kh * kw * cin, cout), (((1,), (0,)), ((), ())),
                          precision=precision, preferred_element_type=out_dtype)
  return y.reshape(n, ho, wo, cout)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                         lhs_dilation: Optional[Sequence[int]] = None, rhs_dilation: Optional[Sequence[int]] = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1, batch_group_count: int = 1,
                         precision: Any = None, preferred_element_type: Any = None) -> jax.Array:
  """`jax.lax.conv_general_dilated`, formulated for XLA:CPU where that is faster. Pass it to
  `nn.Conv(conv_general_dilated=...)`.

  On CPU, an undilated, ungrouped NHWC convolution with one stride for both axes is computed
  as matrix products: a 1×1 one always (`_pointwise_conv`, with the gradients of
  `_pointwise_conv_bwd`), a k×k one on small maps or when strided (`_patch_conv`, see
  `_PATCH_MAX_ROWS`). The same function, equal to XLA's convolution up to float rounding
  (sums in another order). Anything else, and every convolution off CPU, is XLA's own.
  """
  args = (window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
          batch_group_count, precision, preferred_element_type)
  if not (_active() and lhs.ndim == 4 and feature_group_count == 1 and batch_group_count == 1
          and all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
          and len(set(window_strides)) == 1
          and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
          == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)):
    return jax.lax.conv_general_dilated(lhs, rhs, *args)
  stride = int(window_strides[0])
  kh, kw = rhs.shape[:2]
  pads = tuple(tuple(int(p) for p in pair) for pair in (
      jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), window_strides, padding)
      if isinstance(padding, str) else padding))
  if (kh, kw) == (1, 1) and pads == ((0, 0), (0, 0)):
    return _pointwise_conv(lhs, rhs, stride, precision, preferred_element_type)
  rows = lhs.shape[0] * ((lhs.shape[1] + sum(pads[0]) - kh) // stride + 1) * (
      (lhs.shape[2] + sum(pads[1]) - kw) // stride + 1)
  if rows <= _PATCH_MAX_ROWS or (stride > 1 and lhs.shape[3] >= _PATCH_STRIDED_MIN_CIN):
    return _patch_conv(lhs, rhs, stride, pads, precision, preferred_element_type)
  return jax.lax.conv_general_dilated(lhs, rhs, *args)
