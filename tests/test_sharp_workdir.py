"""A folder flag that names a file (--workdir, config.input.store_dir, config.data_dir): one line on
stderr, exit code 2, nothing written; and the workdir's lock and saved config, checked closely."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from absl import flags

from alexnet_jax import workdir as workdir_lib
from tests.conftest import REPO
from tests.conftest import subprocess_env

sys.path.insert(0, str(REPO))
from alexnet_jax import main_lib  # noqa: E402

BASE = "--config=configs/alexnet.py:smoke"


def _one_line_error(code, text: str, *needles: str) -> None:
  lines = [line for line in text.splitlines() if line.startswith("error: ")]
  assert code == 2 and "Traceback" not in text and len(lines) == 1, text
  for needle in needles:
    assert needle in lines[0], (needle, text)


def _run_in_process(argv: list[str], capsys) -> tuple[int, str]:
  old, cwd = sys.argv, os.getcwd()
  sys.argv = ["main.py", *argv]
  os.chdir(REPO)
  try:
    with pytest.raises(SystemExit) as exit_info:
      main_lib.run()
  finally:
    sys.argv = old
    os.chdir(cwd)
    flags.FLAGS.unparse_flags()
  out = capsys.readouterr()
  return exit_info.value.code, out.out + out.err


@pytest.mark.parametrize("flag", ["--config.input.store_dir", "--config.data_dir", "--workdir"])
@pytest.mark.parametrize("below", [False, True])
def test_a_folder_flag_naming_a_file_is_one_line(flag, below, tmp_path, capsys):
  a_file = tmp_path / "a_file"
  a_file.write_text("not a folder")
  value = a_file / "inside" if below else a_file
  workdir = tmp_path / "run"
  argv = [BASE, f"--workdir={workdir}", f"{flag}={value}"]  # the last --workdir wins
  code, text = _run_in_process(argv, capsys)
  _one_line_error(code, text, f"{flag.removeprefix('--config.') if flag != '--workdir' else flag}={value}",
                  "names a file")
  if below:
    assert f"under the file {a_file}" in text
  assert not workdir.exists() and a_file.read_text() == "not a folder"
  assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_store_dir_naming_a_file_from_a_real_process(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  workdir = tmp_path / "run"
  r = subprocess.run([sys.executable, "main.py", BASE, f"--config.input.store_dir={a_file}",
                      f"--workdir={workdir}"], cwd=REPO, env=subprocess_env(), capture_output=True,
                     text=True, timeout=300)
  _one_line_error(r.returncode, r.stdout + r.stderr, "config.input.store_dir", "names a file")
  assert not workdir.exists()


def test_refuse_files_accepts_folders_and_paths_yet_to_be_made(tmp_path):
  (tmp_path / "a_file").write_text("")
  workdir_lib.refuse_files({"a": str(tmp_path), "b": str(tmp_path / "new" / "deeper"), "c": "", "d": "relative/x"})
  with pytest.raises(workdir_lib.WorkdirError, match=r"^b=.*a_file names a file, not a folder\. Give"):
    workdir_lib.refuse_files({"a": str(tmp_path), "b": str(tmp_path / "a_file")})
  with pytest.raises(workdir_lib.WorkdirError, match=r"under the file .*a_file\)"):
    workdir_lib.refuse_files({"x": str(tmp_path / "a_file" / "y" / "z")})


def test_prepare_makes_the_folder_and_leaves_no_probe(tmp_path):
  target = tmp_path / "a" / "b"
  workdir_lib.prepare(str(target))
  assert target.is_dir() and os.listdir(target) == []
  (tmp_path / "f").write_text("")
  with pytest.raises(workdir_lib.WorkdirError, match="is not writable"):
    workdir_lib.prepare(str(tmp_path / "f"))


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path):
  with workdir_lib.Lock(str(tmp_path)):
    assert (tmp_path / ".lock").read_text() == str(os.getpid())
    other = subprocess.run(
        [sys.executable, "-c", "import sys; from alexnet_jax import workdir; workdir.Lock(sys.argv[1]).acquire()",
         str(tmp_path)], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert other.returncode != 0 and f"process {os.getpid()}" in other.stderr
  again = workdir_lib.Lock(str(tmp_path)).acquire()  # released: free again
  again.release()
  again.release()  # a second release is harmless


def test_save_config_reports_what_changed(tmp_path):
  from ml_collections import ConfigDict
  first = ConfigDict({"a": 1, "b": {"c": 2}})
  assert workdir_lib.save_config(str(tmp_path), first) == {}
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved == {"a": 1, "b": {"c": 2}} and not (tmp_path / "config.json.tmp").exists()
  second = ConfigDict({"a": 1, "b": {"c": 3}, "d": "x"})
  assert workdir_lib.save_config(str(tmp_path), second) == {"b.c": (2, 3), "d": (None, "x")}
  (tmp_path / "config.json").write_text("{broken")
  assert workdir_lib.save_config(str(tmp_path), first) == {}
