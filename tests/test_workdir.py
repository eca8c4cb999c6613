"""The run's folder (alexnet_jax/workdir.py): the writable check, the single-writer lock, the saved config."""

import json

import pytest

from alexnet_jax import workdir
from alexnet_jax.configs import alexnet
from alexnet_jax.errors import UserError


def test_prepare_creates_the_folder_and_refuses_an_unwritable_one(tmp_path):
  wd = tmp_path / "a" / "b"
  workdir.prepare(str(wd))
  assert wd.is_dir() and not list(wd.iterdir())  # the write probe is removed
  blocker = tmp_path / "a_file"
  blocker.write_text("x")
  with pytest.raises(workdir.WorkdirError, match=r"not writable.*--workdir=") as e:
    workdir.prepare(str(blocker / "run"))
  assert isinstance(e.value, UserError)


def test_lock_is_exclusive_names_the_holder_and_is_released(tmp_path):
  import os
  with workdir.Lock(str(tmp_path)):
    assert (tmp_path / ".lock").read_text() == str(os.getpid())
    with pytest.raises(workdir.WorkdirError, match=f"Another run is using this workdir.*process {os.getpid()}"):
      workdir.Lock(str(tmp_path)).acquire()
  again = workdir.Lock(str(tmp_path)).acquire()  # released on exit
  again.release()
  again.release()  # a second release is harmless


def test_save_config_reports_the_fields_changed_since_the_last_run(tmp_path):
  c = alexnet.get_config("smoke")
  assert workdir.save_config(str(tmp_path), c) == {}  # first run: nothing to compare
  assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == c.batch_size
  assert workdir.save_config(str(tmp_path), c) == {}
  old_batch = c.batch_size
  c.schedule.base_lr, c.batch_size = 0.5, 2 * old_batch
  changed = workdir.save_config(str(tmp_path), c)
  assert set(changed) == {"schedule.base_lr", "batch_size"}
  assert changed["batch_size"] == (old_batch, 2 * old_batch)
  assert not (tmp_path / "config.json.tmp").exists()


def test_save_config_overwrites_an_unreadable_one(tmp_path):
  (tmp_path / "config.json").write_text("{ torn")
  assert workdir.save_config(str(tmp_path), alexnet.get_config("smoke")) == {}
  assert json.loads((tmp_path / "config.json").read_text())["model"]["name"] == "alexnet"


def test_a_run_on_a_workdir_in_use_stops_with_one_line(tmp_path, capsys, monkeypatch):
  """The command line refuses a workdir another run holds: exit 2, the holder's process named, nothing written."""
  import os
  import sys
  from alexnet_jax import main_lib
  monkeypatch.setattr(sys, "argv", list(sys.argv))  # main_lib.run sets it
  wd = tmp_path / "busy"
  workdir.prepare(str(wd))
  with workdir.Lock(str(wd)):
    with pytest.raises(SystemExit) as exit_:
      main_lib.run(["main.py", "--config=configs/alexnet.py:smoke", "--config.num_train_steps=1", f"--workdir={wd}"])
  err = capsys.readouterr().err
  assert exit_.value.code == 2, err[-3000:]
  assert "Another run is using this workdir" in err and f"process {os.getpid()}" in err
  assert "Traceback" not in err
  assert sorted(p.name for p in wd.iterdir()) == [".lock"]
