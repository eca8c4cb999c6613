"""Prints a markdown table of every model: parameters, forward GFLOPs, the paper's reported error.

  python -m experiments.model_table

Parameters are counted at 1000 classes from `jax.eval_shape` (nothing is allocated).
FLOPs are XLA's own cost analysis of the compiled single-image inference forward
pass at 224 px (227 for the 2012 AlexNet); XLA counts a multiply-add as 2 FLOPs, so
these are about twice the "multiply-adds" quoted in most papers. Families whose model
module is not present are skipped.
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from alexnet_jax import model_choices  # noqa: E402
from alexnet_jax.eval import report  # noqa: E402
from alexnet_jax.models import build_model  # noqa: E402

# (row name, config module, config argument, resolution).
MODELS: list[tuple[str, str, str, int]] = [
    ("alexnet (paper)", "alexnet", "", 227),
    ("alexnet (owt)", "alexnet", "variant=owt,geometry=224", 224),
    ("zfnet", "zfnet", "", 224),
    *[(f"vgg{d}{'_bn' if bn else ''}", "vgg", f"depth={d},bn={bn}", 224) for d in model_choices.DEPTHS["vgg"]
      for bn in (False, True)],
    ("googlenet", "googlenet", "aux=False", 224),
    *[(f"resnet{d}", "resnet", f"depth={d}", 224) for d in model_choices.DEPTHS["resnet"]],
    ("resnet50_d", "resnet", "depth=50,d", 224),
    ("resnext50_32x4d", "resnext", "", 224),
    ("se_resnet50", "senet", "", 224),
    ("squeezenet1_0", "squeezenet", "version=1_0", 224),
    ("squeezenet1_1", "squeezenet", "version=1_1", 224),
]

def family_available(model_name: str) -> bool:
  try:
    importlib.import_module(f"alexnet_jax.models.{model_name}")
  except ModuleNotFoundError:
    return False
  return True


def measure(module, size: int) -> tuple[int, float]:
  """(parameters, forward FLOPs) of `module` on one size×size image."""
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  variables = jax.eval_shape(lambda im: module.init({"params": jax.random.key(0)}, im, train=False), x)
  params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))
  compiled = jax.jit(lambda v, im: module.apply(v, im, train=False)).lower(variables, x).compile()
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax returned one dict per computation
    cost = cost[0]
  return params, float(cost.get("flops", float("nan")))


def rows() -> list[tuple[str, int, float, str]]:
  out = []
  for name, config_name, arg, size in MODELS:
    cfg = importlib.import_module(f"alexnet_jax.configs.{config_name}").get_config(arg)
    if not family_available(cfg.model.name):
      continue
    params, flops = measure(build_model(cfg.model, 1000), size)
    out.append((f"{name} @{size}", params, flops / 1e9, report.paper_error(name)))
  return out


def markdown(table: list[tuple[str, int, float, str]]) -> str:
  lines = ["| model | params | GFLOPs (XLA, multiply-add = 2 FLOPs) | paper top-1 / top-5 error % |",
           "|---|---:|---:|---|"]
  lines += [f"| {n} | {p:,} | {g:.2f} | {r} |" for n, p, g, r in table]
  return "\n".join(lines)


def main() -> None:
  print(markdown(rows()))


if __name__ == "__main__":
  main()
