"""torchvision weights → step-0 Orbax checkpoint → main.py evaluates it."""

import functools
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.conftest import subprocess_env

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


@pytest.mark.slow
def test_pth_to_checkpoint_then_eval(tmp_path, capsys):
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
  import jax
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
  forward = jax.jit(functools.partial(state.apply_fn, train=False))  # one program, not op by op
  ours = np.asarray(forward(runtime.model_variables(state), images))
  model.eval()
  with torch.no_grad():
    theirs = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  assert np.abs(theirs).max() > 1e-3  # not a degenerate all-zero case
  np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())
  assert (ours.argmax(-1) == theirs.argmax(-1)).all()

  # A second conversion into the same workdir must not overwrite it: the command's exit code 2
  # (`run` is what `python -m alexnet_jax.torch_convert` exits with; in-process, it skips a
  # second start-up of torch, TensorFlow and JAX).
  from alexnet_jax.torch_convert import __main__ as cli
  before = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
  capsys.readouterr()
  assert cli.run(["--model=alexnet", f"--pth={pth}", f"--workdir={workdir}", f"--config={cfg}"]) == 2
  assert "already holds checkpoints" in capsys.readouterr().err
  assert sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")) == before

  # main.py evaluates it (a few 224² images: the run is about restoring and evaluating the converted
  # checkpoint, not about its accuracy).
  out = subprocess.run([sys.executable, "main.py", f"--config={cfg}", f"--workdir={workdir}", "--mode=eval",
                        f"--config.data_dir={data_dir}", "--config.embedded_eval_size=16",
                        "--config.embedded_train_size=16", "--config.eval_batch_size=16"],
                       cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "Restored checkpoint step 0" in out.stderr, out.stderr[-3000:]
