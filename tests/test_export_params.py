"""python -m alexnet_jax.pretrained export|import: a run's parameters to .npz and back into a checkpoint, unchanged."""

import jax
import numpy as np
from flax import traverse_util

from alexnet_jax import pretrained
from alexnet_jax import runtime
from tests.conftest import TRAINED_CLI, tiny_train_config


def test_export_then_import_round_trips_the_parameters(trained_run, tmp_path):
  out = tmp_path / "params.npz"
  info = pretrained.export_params(str(trained_run.workdir), str(out))
  flat = traverse_util.flatten_dict(jax.device_get(trained_run.state.params), sep="/")
  data = np.load(out)
  assert int(data["step"]) == info["step"] == int(trained_run.state.step)
  assert set(flat) <= set(data.files) and "config_json" in data.files and int(data["num_classes"]) == 10
  for k, v in flat.items():
    np.testing.assert_array_equal(data[k], np.asarray(v))
  # --match keeps one layer; float16 halves the file
  conv1 = tmp_path / "conv1.npz"
  assert pretrained.main(["export", str(trained_run.workdir), f"--out={conv1}", "--match=conv1",
                          "--dtype=float16"]) == 0
  assert sorted(k for k in np.load(conv1).files if "/" in k) == ["conv1/bias", "conv1/kernel"]
  assert np.load(conv1)["conv1/kernel"].dtype == np.float16

  loaded = tmp_path / "loaded"
  pretrained.import_params(str(out), str(loaded), tiny_train_config())  # the trained run's config
  _, state, step = runtime.restore_for_inference(tiny_train_config(), str(loaded))
  assert step == info["step"]
  for k, v in traverse_util.flatten_dict(jax.device_get(state.params), sep="/").items():
    np.testing.assert_array_equal(np.asarray(v), np.asarray(flat[k]))


def test_user_mistakes_are_one_line(tmp_path, capsys):
  assert pretrained.main(["export", str(tmp_path / "nothing"), f"--out={tmp_path / 'x.npz'}"]) == 2
  assert "error:" in capsys.readouterr().err
  config = TRAINED_CLI[0].split("=", 1)[1]
  assert pretrained.main(["import", str(tmp_path / "new"), f"--npz={tmp_path / 'x.npz'}", f"--config={config}"]) == 2
  assert "error:" in capsys.readouterr().err
