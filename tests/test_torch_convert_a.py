"""torchvision → Flax conversion for AlexNet, VGG, GoogLeNet and SqueezeNet: logits must agree."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from alexnet_jax import torch_convert  # noqa: E402
from alexnet_jax.models import alexnet, googlenet, squeezenet, vgg  # noqa: E402
from alexnet_jax.torch_convert import __main__ as cli  # noqa: E402
from alexnet_jax.torch_convert import common  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
  """torch on one thread for this file: its OpenMP workers spin between the small ops of these
  batch-2 forwards, burning more CPU than they save."""
  before = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(before)


def randomise(model: "torch.nn.Module") -> "torch.nn.Module":
  """Non-trivial BN statistics and biases, so a mix-up of mean/var or scale/bias would show."""
  torch.manual_seed(0)
  with torch.no_grad():
    for mod in model.modules():
      if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.5, 0.5)
        mod.running_var.uniform_(0.5, 2.0)
        mod.weight.uniform_(0.5, 1.5)
        mod.bias.uniform_(-0.5, 0.5)
      elif isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)) and mod.bias is not None:
        mod.bias.uniform_(-0.1, 0.1)
  return model.eval()


def relative_error(flax_module, variables, torch_model, size: int, batch: int = 2) -> float:
  x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
  with torch.no_grad():
    ref = torch_model(torch.from_numpy(x)).numpy()
  out = jax.jit(lambda v, im: flax_module.apply(v, im, train=False))(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
  assert out.dtype == jnp.float32 and out.shape == ref.shape
  return float(np.linalg.norm(np.asarray(out) - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("name,size", [("vgg11", 32), ("vgg19_bn", 32)])
def test_vgg_logits_match(name, size):
  depth, bn = int(name[3:5]), name.endswith("_bn")
  tm = randomise(getattr(torchvision.models, name)(weights=None, num_classes=10))
  variables = torch_convert.convert(name, tm.state_dict())
  assert ("batch_stats" in variables) == bn
  assert relative_error(vgg.VGG(num_classes=10, depth=depth, bn=bn), variables, tm, size) < 1e-4


def test_alexnet_logits_match():
  tm = randomise(torchvision.models.alexnet(weights=None, num_classes=10))
  variables = torch_convert.convert("alexnet", tm.state_dict())
  assert "batch_stats" not in variables
  fm = alexnet.AlexNet(num_classes=10, variant="owt", towers=1, lrn=False, conv1_padding=2)
  assert relative_error(fm, variables, tm, 224) < 1e-4


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_squeezenet_logits_match(name):
  tm = randomise(getattr(torchvision.models, name)(weights=None, num_classes=10))
  variables = torch_convert.convert(name, tm.state_dict())
  fm = squeezenet.SqueezeNet(num_classes=10, version=name[-3:])
  assert relative_error(fm, variables, tm, 96) < 1e-4


def test_googlenet_logits_match():
  tm = randomise(torchvision.models.googlenet(weights=None, num_classes=10, aux_logits=False, init_weights=True))
  variables = torch_convert.convert("googlenet", tm.state_dict())
  assert "aux1" not in variables["params"]
  assert relative_error(googlenet.GoogLeNet(num_classes=10, aux_logits=False), variables, tm, 64) < 1e-4


def test_googlenet_aux_heads_match_in_training():
  """With aux heads and dropout off, train-mode logits (batch statistics) and both aux heads agree."""
  tm = randomise(torchvision.models.googlenet(weights=None, num_classes=10, aux_logits=True, init_weights=True))
  variables = torch_convert.convert("googlenet", tm.state_dict())
  tm.train()
  for mod in tm.modules():
    if isinstance(mod, torch.nn.Dropout):
      mod.p = 0.0
  x = np.random.default_rng(1).standard_normal((4, 3, 64, 64)).astype(np.float32)
  with torch.no_grad():
    ref = tm(torch.from_numpy(x))
  fm = googlenet.GoogLeNet(num_classes=10, aux_logits=True, dropout=0.0, aux_dropout=0.0)
  apply = jax.jit(lambda v, im: fm.apply(v, im, train=True, mutable=["batch_stats", "aux"]))
  out, state = apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
  rel = lambda a, b: np.linalg.norm(np.asarray(a) - b.numpy()) / np.linalg.norm(b.numpy())
  assert rel(out, ref.logits) < 1e-4
  aux = state["aux"]["logits"]
  assert len(aux) == 2
  assert rel(aux[0], ref.aux_logits1) < 1e-4 and rel(aux[1], ref.aux_logits2) < 1e-4


def torch_param_count(name: str, **kwargs) -> int:
  with torch.device("meta"):  # no memory, no init time
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
  return sum(p.numel() for p in model.parameters())


def flax_param_count(module, size: int = 224) -> int:
  shapes = common.reference_shapes(module, (1, size, size, 3))["params"]
  return sum(int(np.prod(s)) for s in shapes.values())


@pytest.mark.parametrize("name,module", [
    ("alexnet", alexnet.AlexNet(variant="owt", towers=1, lrn=False, conv1_padding=2)),
    ("vgg11", vgg.VGG(depth=11)),
    ("vgg16", vgg.VGG(depth=16)),
    ("vgg19_bn", vgg.VGG(depth=19, bn=True)),
    ("squeezenet1_0", squeezenet.SqueezeNet(version="1_0")),
    ("squeezenet1_1", squeezenet.SqueezeNet(version="1_1")),
])
def test_param_counts_equal_torchvision(name, module):
  assert flax_param_count(module) == torch_param_count(name)


def test_googlenet_param_counts_equal_torchvision():
  assert flax_param_count(googlenet.GoogLeNet(aux_logits=False)) == torch_param_count(
      "googlenet", aux_logits=False, init_weights=True)
  assert flax_param_count(googlenet.GoogLeNet(aux_logits=True)) == torch_param_count(
      "googlenet", aux_logits=True, init_weights=True)


def test_known_counts():
  assert torch_param_count("vgg16") == 138_357_544
  assert flax_param_count(vgg.VGG(depth=16)) == 138_357_544
  assert flax_param_count(alexnet.AlexNet(variant="owt", towers=1, lrn=False, conv1_padding=2)) == 61_100_840


def test_flattened_linear_kernel_reorders_chw_to_hwc():
  rng = np.random.default_rng(0)
  weight = rng.standard_normal((5, 3 * 2 * 4)).astype(np.float32)
  feats = rng.standard_normal((3, 2, 4)).astype(np.float32)
  kernel = common.flattened_linear_kernel(weight, (3, 2, 4))
  np.testing.assert_allclose(feats.transpose(1, 2, 0).reshape(-1) @ kernel, weight @ feats.reshape(-1), rtol=1e-5)
  with pytest.raises(common.ConversionError, match="C×H×W"):
    common.flattened_linear_kernel(weight, (3, 3, 3))


def test_conv_kernel_is_hwio():
  w = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
  k = common.conv_kernel(w)
  assert k.shape == (4, 5, 3, 2) and k[1, 2, 0, 1] == w[1, 0, 1, 2]


def test_unknown_model_name_lists_choices():
  with pytest.raises(common.ConversionError, match="vgg16_bn"):
    torch_convert.convert("vgg17", {})


def test_wrong_architecture_is_reported():
  sd = torchvision.models.squeezenet1_1(num_classes=10).state_dict()
  with pytest.raises(common.ConversionError, match="squeezenet1_0|features"):
    torch_convert.convert("squeezenet1_0", sd)


def test_leftover_and_misshaped_tensors_are_listed():
  sd = dict(torchvision.models.squeezenet1_1(num_classes=10).state_dict())
  sd["extra.weight"] = torch.zeros(3)
  sd["features.3.squeeze.weight"] = torch.zeros(16, 64, 3, 3)
  with pytest.raises(common.ConversionError) as err:
    torch_convert.convert("squeezenet1_1", sd)
  text = str(err.value)
  assert "'extra.weight' was not used" in text
  assert "params/fire2/squeeze/kernel" in text and "(3, 3, 64, 16)" in text


def test_cli_writes_npz_and_checks_config(tmp_path):
  tm = randomise(torchvision.models.squeezenet1_1(weights=None, num_classes=7))
  pth = tmp_path / "sq.pth"
  torch.save(tm.state_dict(), pth)
  out = tmp_path / "sq.npz"
  variables = cli.main(["--model=squeezenet1_1", f"--pth={pth}", f"--out={out}"])
  saved = np.load(out)
  assert "params/conv10/kernel" in saved.files
  np.testing.assert_array_equal(saved["params/conv10/kernel"], variables["params"]["conv10"]["kernel"])
  assert saved["params/conv10/kernel"].shape == (1, 1, 512, 7)
  with pytest.raises(common.ConversionError, match="do not fit the model"):
    cli.main(["--model=squeezenet1_1", f"--pth={pth}", f"--out={out}",
              "--config=configs/squeezenet.py:version=1_0"])


def test_cli_refuses_non_state_dict(tmp_path):
  pth = tmp_path / "bad.pth"
  torch.save([1, 2, 3], pth)
  with pytest.raises(ValueError, match="state_dict"):
    cli.load_state_dict(str(pth))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    cli.load_state_dict(str(tmp_path / "missing.pth"))
