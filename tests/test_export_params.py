"""experiments/export_params.py: a run's parameters to .npz and back into a checkpoint, unchanged."""

import jax
import numpy as np
from flax import traverse_util

from alexnet_jax import runtime
from experiments import export_params
from tests.conftest import TRAINED_CLI, tiny_train_config


def test_export_then_load_round_trips_the_parameters(trained_run, tmp_path):
  out = tmp_path / "params.npz"
  info = export_params.export(str(trained_run.workdir), str(out))
  flat = traverse_util.flatten_dict(jax.device_get(trained_run.state.params), sep="/")
  data = np.load(out)
  assert int(data["step"]) == info["step"] == int(trained_run.state.step)
  assert set(flat) <= set(data.files) and "config_json" in data.files
  for k, v in flat.items():
    np.testing.assert_array_equal(data[k], np.asarray(v))
  # --match keeps one layer; float16 halves the file
  conv1 = tmp_path / "conv1.npz"
  assert export_params.main([str(trained_run.workdir), f"--out={conv1}", "--match=conv1", "--dtype=float16"]) == 0
  assert sorted(k for k in np.load(conv1).files if "/" in k) == ["conv1/bias", "conv1/kernel"]
  assert np.load(conv1)["conv1/kernel"].dtype == np.float16

  config = tiny_train_config()  # the trained run's config (TRAINED_CLI on the command line)
  loaded = tmp_path / "loaded"
  export_params.load(str(out), str(loaded), TRAINED_CLI[0].split("=", 1)[1], config=config)
  _, state, step = runtime.restore_for_inference(config, str(loaded))
  assert step == info["step"]
  for k, v in traverse_util.flatten_dict(jax.device_get(state.params), sep="/").items():
    np.testing.assert_array_equal(np.asarray(v), np.asarray(flat[k]))


def test_user_mistakes_are_one_line(tmp_path, capsys):
  assert export_params.main([str(tmp_path / "nothing"), f"--out={tmp_path / 'x.npz'}"]) == 2
  assert "error:" in capsys.readouterr().err
