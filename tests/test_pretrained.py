"""torchvision weights → step-0 Orbax checkpoint → main.py evaluates it.

The converter command and main.py run in-process (their `run` functions, which their command lines
call): two child processes would each start torch or TensorFlow, and JAX, afresh.
"""

import functools
import sys

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


@pytest.fixture
def one_torch_thread():
  """torch on one thread: its OpenMP workers spin between the ops of a batch-4 forward, burning more
  CPU than they save."""
  before = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(before)


@pytest.mark.slow
def test_pth_to_checkpoint_then_eval(tmp_path, capsys, monkeypatch, one_torch_thread):
  from alexnet_jax import main_lib
  from alexnet_jax.torch_convert import __main__ as cli
  torch.manual_seed(0)
  model = torchvision.models.alexnet(weights=None, num_classes=10)
  pth = tmp_path / "alexnet.pth"
  torch.save(model.state_dict(), pth)
  workdir = tmp_path / "run"
  data_dir = tmp_path / "tfds"
  cfg = ("configs/alexnet.py:variant=owt,geometry=224,data=embedded")
  convert_argv = ["--model=alexnet", f"--pth={pth}", f"--workdir={workdir}", f"--config={cfg}"]
  assert cli.run(convert_argv) == 0  # the exit code of `python -m alexnet_jax.torch_convert ...`
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

  # A second conversion into the same workdir must not overwrite it: the command's exit code 2, given
  # before it converts anything; save_pretrained refuses it as well.
  from alexnet_jax import pretrained
  from alexnet_jax import workdir as workdir_lib
  before = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
  capsys.readouterr()
  assert cli.run(convert_argv) == 2
  out, err = capsys.readouterr()
  assert "already holds checkpoints" in err and "converting" not in out
  with pytest.raises(workdir_lib.WorkdirError, match="already holds checkpoints"):
    pretrained.save_pretrained(str(workdir), {"params": {}}, config)
  assert sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")) == before

  # main.py evaluates it (a few 224² images: the run is about restoring and evaluating the converted
  # checkpoint, not about its accuracy).
  monkeypatch.setattr(sys, "argv", list(sys.argv))  # main_lib.run sets it
  with pytest.raises(SystemExit) as exit_:
    main_lib.run(["main.py", f"--config={cfg}", f"--workdir={workdir}", "--mode=eval",
                  f"--config.data_dir={data_dir}", "--config.embedded_eval_size=16",
                  "--config.embedded_train_size=16", "--config.eval_batch_size=16"])
  out, err = capsys.readouterr()
  assert exit_.value.code in (0, None), (out + err)[-3000:]
  # What the command prints and writes, not its log: absl's logger level depends on which flag parses
  # ran before in this process.
  assert f"Checkpoint step 0 of {workdir}:" in out, (out + err)[-3000:]
  assert (workdir / "eval" / "step_0.json").is_file()
