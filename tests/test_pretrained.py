"""torchvision weights → step-0 Orbax checkpoint → main.py evaluates it."""

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.conftest import subprocess_env

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


@pytest.mark.slow
def test_pth_to_checkpoint_then_eval(tmp_path):
  torch.manual_seed(0)
  model = torchvision.models.alexnet(weights=None, num_classes=10)
  pth = tmp_path / "alexnet.pth"
  torch.save(model.state_dict(), pth)
  workdir = tmp_path / "run"
  data_dir = tmp_path / "tfds"
  cfg = ("configs/alexnet.py:variant=owt,geometry=224,data=embedded")
  subprocess.run([sys.executable, "-m", "alexnet_jax.torch_convert", "--model=alexnet", f"--pth={pth}",
                  f"--workdir={workdir}", f"--config={cfg}"], cwd=REPO, env=subprocess_env(), check=True, timeout=600)
  assert (workdir / "checkpoints" / "0").is_dir()
  assert (workdir / "config.json").is_file()
  # The same weights as safetensors, readable without this package: fc8 is torch's classifier.6.
  from safetensors.numpy import load_file
  flat = load_file(str(workdir / "alexnet.safetensors"))
  assert flat["params/fc8/kernel"].shape == (4096, 10)
  assert (flat["params/fc8/kernel"] == model.state_dict()["classifier.6.weight"].numpy().T).all()

  # Restored by our inference path, the checkpoint computes torchvision's logits on the same images.
  import numpy as np
  from alexnet_jax import runtime
  from alexnet_jax.configs import alexnet as alexnet_config
  from alexnet_jax.data import input_pipeline
  config = alexnet_config.get_config("variant=owt,geometry=224,data=embedded")
  info = input_pipeline.DatasetInfo(name="embedded", num_classes=10, num_train=config.batch_size, num_eval=0,
                                    class_names=tuple(str(i) for i in range(10)))
  _, state, step = runtime.restore_for_inference(config, str(workdir), info=info)
  assert step == 0
  images = np.random.default_rng(0).normal(size=(4, 224, 224, 3)).astype(np.float32)
  ours = np.asarray(state.apply_fn(runtime.model_variables(state), images, train=False))
  model.eval()
  with torch.no_grad():
    theirs = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  assert np.abs(theirs).max() > 1e-3  # not a degenerate all-zero case
  np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())
  assert (ours.argmax(-1) == theirs.argmax(-1)).all()

  # A second conversion into the same workdir must not overwrite it.
  again = subprocess.run([sys.executable, "-m", "alexnet_jax.torch_convert", "--model=alexnet", f"--pth={pth}",
                          f"--workdir={workdir}", f"--config={cfg}"], cwd=REPO, env=subprocess_env(),
                         capture_output=True, text=True, timeout=600)
  assert again.returncode != 0
  assert "already holds checkpoints" in again.stderr

  out = subprocess.run([sys.executable, "main.py", f"--config={cfg}", f"--workdir={workdir}", "--mode=eval",
                        f"--config.data_dir={data_dir}", "--config.embedded_eval_size=64",
                        "--config.embedded_train_size=64", "--config.eval_batch_size=32"],
                       cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
