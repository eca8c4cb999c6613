"""Shared helpers for turning a torchvision `state_dict` into Flax variables.

Layouts differ in three places, and each has one helper here:

* convolutions: torch stores kernels OIHW, Flax HWIO (`conv_kernel`);
* linear layers: torch stores (out, in), Flax (in, out) (`linear_kernel`);
* the first linear layer after a flatten: torch flattens NCHW feature maps in
  C, H, W order, Flax models flatten NHWC maps in H, W, C order, so the rows of
  that kernel must be permuted (`flattened_linear_kernel`).

BatchNorm maps weight/bias → params scale/bias and running_mean/running_var →
batch_stats mean/var (`StateDict.batch_norm`).

Family converters read tensors through `StateDict`, which records every key it
hands out, then call `finish`, which fails loudly if a torch tensor was never used
or if the produced tree does not match the Flax module leaf for leaf and shape
for shape. A silent mismatch would otherwise show up only as bad accuracy.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from alexnet_jax.errors import UserError

# Torch bookkeeping tensors that have no Flax counterpart.
IGNORED_SUFFIXES = ("num_batches_tracked",)


class ConversionError(UserError, ValueError):
  """A state_dict that does not fit the Flax model it is converted for."""


def to_numpy(value: Any) -> np.ndarray:
  """A float32 NumPy copy of a torch tensor or array-like (no torch import needed)."""
  if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
    value = value.detach().cpu().float().numpy()
  return np.asarray(value, dtype=np.float32)


def conv_kernel(weight: np.ndarray) -> np.ndarray:
  """torch conv weight (out, in/groups, kh, kw) → Flax kernel (kh, kw, in/groups, out)."""
  if weight.ndim != 4:
    raise ConversionError(f"A conv weight must be 4-D (out, in, kh, kw); got shape {weight.shape}.")
  return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)))


def linear_kernel(weight: np.ndarray) -> np.ndarray:
  """torch linear weight (out, in) → Flax Dense kernel (in, out)."""
  if weight.ndim != 2:
    raise ConversionError(f"A linear weight must be 2-D (out, in); got shape {weight.shape}.")
  return np.ascontiguousarray(weight.T)


def flattened_linear_kernel(weight: np.ndarray, chw: Sequence[int]) -> np.ndarray:
  """Kernel for a linear layer fed by flattened (C, H, W) maps, for a model that flattens (H, W, C).

  torch input feature index c·H·W + h·W + w becomes Flax index h·W·C + w·C + c.
  """
  c, h, w = chw
  out, fan_in = weight.shape
  if fan_in != c * h * w:
    raise ConversionError(
        f"Linear weight has {fan_in} inputs but the feature map is C×H×W = {c}×{h}×{w} = {c * h * w}; "
        "the input resolution or the adaptive pooling size does not match the checkpoint.")
  # (out, c, h, w) → (h, w, c, out), copied a block of output units at a time: permuting the rows and
  # then transposing the (out, in) matrix, two strided copies of the whole kernel, took about 5 s of
  # CPU for VGG's 25088×4096 kernel; this takes about 0.3 s.
  src = weight.reshape(out, c, h, w)
  kernel = np.empty((h, w, c, out), weight.dtype)
  for i in range(0, out, 256):
    kernel[..., i:i + 256] = src[i:i + 256].transpose(2, 3, 1, 0)
  return kernel.reshape(fan_in, out)


class StateDict:
  """Read-only view of a torch state_dict that remembers which tensors were used."""

  def __init__(self, state_dict: Mapping[str, Any]):
    if not isinstance(state_dict, Mapping):
      raise ConversionError(
          f"Expected a state_dict mapping names to tensors, got {type(state_dict).__name__}. "
          "If the file holds a whole pickled model, save `model.state_dict()` instead.")
    self._arrays = {str(k): v for k, v in state_dict.items()}
    self._used: set[str] = set()

  def __contains__(self, key: str) -> bool:
    return key in self._arrays

  def keys(self) -> list[str]:
    return list(self._arrays)

  def shape(self, key: str) -> tuple[int, ...]:
    """Shape of tensor `key` without marking it used (e.g. to size the Flax model)."""
    if key not in self._arrays:
      raise ConversionError(f"state_dict has no tensor {key!r}; is this the right model name?")
    return tuple(int(d) for d in self._arrays[key].shape)

  def take(self, key: str) -> np.ndarray:
    """The tensor `key` as float32 NumPy, marking it used."""
    if key not in self._arrays:
      near = [k for k in self._arrays if k.rsplit(".", 1)[0] == key.rsplit(".", 1)[0]]
      hint = f"keys with the same prefix: {near}" if near else f"its first keys are {list(self._arrays)[:6]}"
      raise ConversionError(
          f"state_dict has no tensor {key!r} ({hint}). Does --model name the architecture it was saved from?")
    self._used.add(key)
    return to_numpy(self._arrays[key])

  def unused(self) -> list[str]:
    """Keys never taken, ignoring torch bookkeeping such as num_batches_tracked."""
    return sorted(k for k in self._arrays
                  if k not in self._used and not k.endswith(IGNORED_SUFFIXES))

  def conv(self, prefix: str) -> dict[str, np.ndarray]:
    """Params of a conv layer `prefix` ({'kernel'} plus {'bias'} when torch has one)."""
    out = {"kernel": conv_kernel(self.take(f"{prefix}.weight"))}
    if f"{prefix}.bias" in self._arrays:
      out["bias"] = self.take(f"{prefix}.bias")
    return out

  def linear(self, prefix: str, flatten_chw: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Params of a linear layer; `flatten_chw` when it follows an NCHW flatten (see module doc)."""
    weight = self.take(f"{prefix}.weight")
    kernel = linear_kernel(weight) if flatten_chw is None else flattened_linear_kernel(weight, flatten_chw)
    out = {"kernel": kernel}
    if f"{prefix}.bias" in self._arrays:
      out["bias"] = self.take(f"{prefix}.bias")
    return out

  def batch_norm(self, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(params, batch_stats) of a BatchNorm layer `prefix`."""
    params = {"scale": self.take(f"{prefix}.weight"), "bias": self.take(f"{prefix}.bias")}
    stats = {"mean": self.take(f"{prefix}.running_mean"), "var": self.take(f"{prefix}.running_var")}
    return params, stats

  def conv_bn(self, conv_prefix: str, bn_prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, batch_stats) for a `layers.ConvBNAct` block: {'conv': ..., 'bn': ...}."""
    bn_params, bn_stats = self.batch_norm(bn_prefix)
    return {"conv": self.conv(conv_prefix), "bn": bn_params}, {"bn": bn_stats}


def reference_shapes(module: nn.Module, input_shape: Sequence[int]) -> dict[str, dict[str, tuple]]:
  """Shapes of every 'params' and 'batch_stats' leaf of `module`, without allocating them."""
  def init():
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    return module.init(rngs, jnp.zeros(input_shape, jnp.float32), train=False)
  abstract = jax.eval_shape(init)
  return {col: {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(abstract[col], sep="/").items()}
          for col in ("params", "batch_stats") if col in abstract}


def compare(variables: Mapping[str, Any], expected: Mapping[str, Mapping[str, tuple]]) -> list[str]:
  """Problems (missing, unexpected, wrong shape) between converted variables and expected shapes."""
  problems = []
  for col in sorted(set(variables) | set(expected)):
    got = {k: tuple(np.shape(v)) for k, v in traverse_util.flatten_dict(variables.get(col, {}), sep="/").items()}
    want = expected.get(col, {})
    for name in sorted(set(want) - set(got)):
      problems.append(f"{col}/{name}: not filled (Flax expects shape {want[name]})")
    for name in sorted(set(got) - set(want)):
      problems.append(f"{col}/{name}: produced but the Flax model has no such leaf")
    for name in sorted(set(got) & set(want)):
      if got[name] != want[name]:
        problems.append(f"{col}/{name}: converted shape {got[name]} != Flax shape {want[name]}")
  return problems


def finish(model_name: str, sd: StateDict, params: Mapping[str, Any], batch_stats: Mapping[str, Any],
           module: nn.Module, input_shape: Sequence[int] = (1, 224, 224, 3)) -> dict[str, Any]:
  """Checks the conversion is complete and exact, and returns {'params', ['batch_stats']}.

  Raises ConversionError listing every torch tensor that was not consumed and every
  Flax leaf that is missing, extra or of the wrong shape.
  """
  variables: dict[str, Any] = {"params": dict(params)}
  if batch_stats:
    variables["batch_stats"] = dict(batch_stats)
  problems = [f"torch tensor {k!r} was not used" for k in sd.unused()]
  problems += compare(variables, reference_shapes(module, input_shape))
  if problems:
    listing = "\n  ".join(problems)
    raise ConversionError(
        f"Converting {model_name!r}: the state_dict does not match the Flax model "
        f"({len(problems)} problem(s)):\n  {listing}\n"
        "Check that --model names the architecture the checkpoint was saved from.")
  return variables


def infer_num_classes(sd: StateDict, key: str) -> int:
  """Number of classes from the classifier weight `key` (first dimension), without consuming it."""
  return sd.shape(key)[0]

