"""torchvision ResNet/ResNeXt → Flax: converted models compute the same logits.

Random weights with randomised BatchNorm affine parameters and running statistics
(so a swapped mean/var or scale/bias cannot hide), eval mode, small inputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from alexnet_jax import torch_convert  # noqa: E402
from alexnet_jax.models import resnet  # noqa: E402
from alexnet_jax.torch_convert import common  # noqa: E402
from alexnet_jax.torch_convert import resnet as resnet_convert  # noqa: E402

NUM_CLASSES = 10


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
  """torch on one thread for this file: its OpenMP workers spin between the small ops of these
  batch-2 forwards, burning more CPU than they save."""
  before = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(before)


def torch_model(name: str, num_classes: int = NUM_CLASSES, seed: int = 0):
  """A torchvision model in eval mode with every BN layer's four tensors randomised."""
  torch.manual_seed(seed)
  model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
        module.running_mean.uniform_(-0.2, 0.2)
        module.running_var.uniform_(0.5, 1.5)
  return model.eval()


def relative_error(name: str, size: int) -> float:
  model = torch_model(name)
  x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
  with torch.no_grad():
    expected = model(x).numpy()
  variables = torch_convert.convert(name, model.state_dict())
  # Op by op, not jitted: the nets share their blocks' op shapes, so each op compiles once for all six
  # (a whole-net compile per depth took more CPU than the dispatch).
  got = resnet_convert.flax_module(name, NUM_CLASSES).apply(
      variables, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)), train=False)
  return float(np.max(np.abs(np.asarray(got) - expected)) / np.max(np.abs(expected)))


# One input size: ResNet-101 and -152 then run the ops ResNet-50 compiled (at 32 px they compiled their own).
@pytest.mark.parametrize("name, size", [
    ("resnet18", 64), ("resnet34", 64), ("resnet50", 64), ("resnext50_32x4d", 64),
    ("resnet101", 64), ("resnet152", 64),
])
def test_converted_logits_match_torchvision(name, size):
  assert relative_error(name, size) < 1e-4


@pytest.mark.parametrize("name", sorted(resnet_convert.ARCHS))
def test_parameter_and_stat_counts_match_torchvision(name):
  with torch.device("meta"):  # shapes only: no memory, no initialisation
    model = getattr(torchvision.models, name)(weights=None)
  torch_params = sum(p.numel() for p in model.parameters())
  torch_stats = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
  shapes = common.reference_shapes(resnet_convert.flax_module(name), (1, 64, 64, 3))
  assert sum(int(np.prod(s)) for s in shapes["params"].values()) == torch_params
  assert sum(int(np.prod(s)) for s in shapes["batch_stats"].values()) == torch_stats


def test_variables_layout_and_dtype():
  variables = torch_convert.convert("resnet18", torch_model("resnet18").state_dict())
  assert set(variables) == {"params", "batch_stats"}
  assert variables["params"]["stem"]["conv"]["kernel"].shape == (7, 7, 3, 64)
  assert variables["params"]["layer2_0"]["downsample"]["conv"]["kernel"].shape == (1, 1, 64, 128)
  assert "downsample" not in variables["params"]["layer2_1"]
  assert variables["params"]["head"]["fc"]["kernel"].shape == (512, NUM_CLASSES)
  assert all(np.asarray(v).dtype == np.float32 for v in jax.tree_util.tree_leaves(variables))


def test_config_args_name_matching_models():
  assert resnet_convert.config_arg("resnet50") == "configs/resnet.py:depth=50"
  assert "groups=32" in torch_convert.config_arg("resnext50_32x4d")
  assert resnet_convert.flax_module("resnext50_32x4d").groups == 32
  assert isinstance(resnet_convert.flax_module("resnet18"), resnet.ResNet)


def test_wrong_architecture_is_reported():
  state = torch_model("resnet18").state_dict()
  with pytest.raises(common.ConversionError, match="layer1.2"):
    torch_convert.convert("resnet34", state)  # resnet34 has 3 blocks in layer1
  with pytest.raises(common.ConversionError, match=r"layer1\.0\.(conv|bn)3"):
    torch_convert.convert("resnet50", state)


def test_unused_or_missing_tensors_are_reported():
  state = dict(torch_model("resnet18").state_dict())
  state["extra.weight"] = torch.zeros(3)
  with pytest.raises(common.ConversionError, match="extra.weight"):
    torch_convert.convert("resnet18", state)
  del state["extra.weight"]
  del state["layer3.0.bn2.running_var"]
  with pytest.raises(common.ConversionError, match="layer3.0.bn2.running_var"):
    torch_convert.convert("resnet18", state)


def test_unknown_resnet_name_is_reported():
  with pytest.raises(common.ConversionError, match="choose one of"):
    resnet_convert.convert("resnet200", {})
