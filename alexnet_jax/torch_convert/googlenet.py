"""torchvision `googlenet` → `alexnet_jax.models.googlenet.GoogLeNet` (torchvision layout).

torchvision's names map one to one (BasicConv2d `x.conv`/`x.bn` = our ConvBNAct
`x/conv`, `x/bn`); inception branches are Sequentials (`branch2.0`, `branch2.1`)
that become `branch2_reduce` and `branch2`. The auxiliary heads are converted when
the checkpoint has them (torchvision's released file does; a model built with
`aux_logits=False` does not), and their fc1 reads an NCHW-flattened 128×4×4 map.

torchvision's released weights were trained with `transform_input=True`, i.e. on
pixels scaled to [-1, 1]; `config_arg` therefore selects that normalisation.
"""

from __future__ import annotations

from typing import Any, Mapping

from alexnet_jax.models import googlenet as g_model
from alexnet_jax.torch_convert import common

BRANCHES = {"branch1": "branch1", "branch2_reduce": "branch2.0", "branch2": "branch2.1",
            "branch3_reduce": "branch3.0", "branch3": "branch3.1", "branch4": "branch4.1"}


def convert_aux(sd: common.StateDict, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
  params, stats = sd.conv_bn(f"{prefix}.conv.conv", f"{prefix}.conv.bn")
  aux = {"conv": params, "fc1": sd.linear(f"{prefix}.fc1", flatten_chw=(128, 4, 4)),
         "fc2": sd.linear(f"{prefix}.fc2")}
  return aux, {"conv": stats}


def convert(name: str, state_dict: Mapping[str, Any]) -> dict[str, Any]:
  if name != "googlenet":
    raise common.ConversionError(f"The GoogLeNet converter handles 'googlenet' only, got {name!r}.")
  sd = common.StateDict(state_dict)
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  for stem in ("conv1", "conv2", "conv3"):
    params[stem], stats[stem] = sd.conv_bn(f"{stem}.conv", f"{stem}.bn")
  for block, _ in g_model.INCEPTIONS:
    params[block], stats[block] = {}, {}
    for flax_name, torch_name in BRANCHES.items():
      p, s = sd.conv_bn(f"{block}.{torch_name}.conv", f"{block}.{torch_name}.bn")
      params[block][flax_name], stats[block][flax_name] = p, s
  aux_logits = "aux1.fc2.weight" in sd
  if aux_logits:
    for aux in ("aux1", "aux2"):
      params[aux], stats[aux] = convert_aux(sd, aux)
  params["fc"] = sd.linear("fc")
  module = g_model.GoogLeNet(num_classes=common.infer_num_classes(sd, "fc.weight"), aux_logits=aux_logits)
  return common.finish(name, sd, params, stats, module, input_shape=(1, 64, 64, 3))


def config_arg(name: str) -> str:
  return "configs/googlenet.py:norm=inception"
