"""Prepared stores (data/prepare.py, data/store.py): layout, batches, damage, resume, no TensorFlow.

The store tests prepare a tiny embedded store (128 + 64 images at 72²) once per module;
the command-line tests train a quarter-width AlexNet for a few steps from it with
TensorFlow and TFDS blocked, and kill -9 one run to check the resumed run ends bit-identical.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.data import store as store_lib
from tests.conftest import subprocess_env

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(root: str, **fields):
  c = alexnet_config.get_config("smoke")
  c.unlock()
  c.embedded_train_size, c.embedded_eval_size = 128, 64
  c.input.store_dir = root
  c.model.width, c.batch_size, c.eval_batch_size = 0.25, 32, 32
  c.update_from_flattened_dict(dict(fields))  # 'input.store_size' → c.input.store_size
  c.lock()
  return c


# ----------------------------------------------------------------------------- the store


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  from alexnet_jax.data import prepare
  root = str(tmp_path_factory.mktemp("stores"))
  cfg = _config(root)
  path = prepare.prepare(cfg, shard_bytes=40 * 72 * 72 * 3)  # 40 images per shard: several shards
  return cfg, path


def test_store_layout_and_batches(prepared):
  cfg, path = prepared
  store = store_lib.open_store(cfg, prepare_if_missing=False)
  manifest = json.loads((pathlib.Path(path) / "manifest.json").read_text())
  assert manifest["stored_size"] == 72 and manifest["format_version"] == store_lib.FORMAT_VERSION
  assert [s["count"] for s in manifest["splits"]["train"]["shards"]] == [40, 40, 40, 8]
  assert store.count("train") == 128 and store.count("validation") == 64
  info = store_lib.get_info(cfg)
  assert info.num_classes == 10 and info.num_train == 128
  it = store_lib.train_batches(cfg, start_step=0)
  first = [next(it) for _ in range(5)]
  assert first[0]["image"].dtype == np.uint8 and first[0]["image"].shape == (32, 72, 72, 3)
  # Resuming at step 3 gives batches 3 and 4 again, bit for bit.
  again = store_lib.train_batches(cfg, start_step=3)
  for want in first[3:]:
    got = next(again)
    np.testing.assert_array_equal(got["image"], want["image"])
    np.testing.assert_array_equal(got["label"], want["label"])
  # One epoch (4 steps of 32) visits every image once.
  rows = np.concatenate([store_lib.batch_rows(0, k, 128, 32) for k in range(4)])
  assert sorted(rows) == list(range(128))
  # Two processes' slices concatenate to the global batch.
  both = np.concatenate([store_lib.batch_rows(0, 5, 128, 32, p, 2) for p in range(2)])
  np.testing.assert_array_equal(both, store_lib.batch_rows(0, 5, 128, 32))


def test_eval_batches_pad_and_mask_like_the_stream(prepared):
  cfg, _ = prepared
  for count in (1, 3):
    seen = 0
    for p in range(count):
      batches = list(store_lib.eval_batches(cfg, process_index=p, process_count=count, batch_size=30))
      assert len(batches) == store_lib.num_eval_batches(cfg, process_count=count, batch_size=30)
      for b in batches:
        assert b["image"].shape[0] == 30 // count and b["image"][b["mask"] == 0].max(initial=0) == 0
        seen += int(b["mask"].sum())
    assert seen == 64


def test_store_made_for_another_config_is_refused(prepared, tmp_path):
  cfg, path = prepared
  copy = tmp_path / "stores" / os.path.basename(path)
  shutil.copytree(path, copy)
  manifest = json.loads((copy / "manifest.json").read_text())
  manifest["source"]["embedded_train_size"] = 999
  (copy / "manifest.json").write_text(json.dumps(manifest))
  other = _config(str(tmp_path / "stores"))
  with pytest.raises(store_lib.StoreMismatchError, match="embedded_train_size: store 999, config 128"):
    store_lib.open_store(other, prepare_if_missing=False)


def test_truncated_and_damaged_shards_are_named(prepared, tmp_path):
  cfg, path = prepared
  root = tmp_path / "stores"
  copy = root / os.path.basename(path)
  shutil.copytree(path, copy)
  shard = copy / "train" / "images-00001.npy"
  data = bytearray(shard.read_bytes())
  data[-100] ^= 0xFF  # one pixel changed, size kept
  shard.write_bytes(bytes(data))
  damaged = store_lib.Store(str(copy))
  with pytest.raises(store_lib.StoreCorruptError, match="images-00001.npy"):
    damaged.verify()
  batches = store_lib.train_batches(_config(str(root)))
  with pytest.raises(store_lib.StoreCorruptError, match="images-00001.npy"):
    for _ in range(50):
      next(batches)
      time.sleep(0.01)
  shard.write_bytes(bytes(data[:-1000]))
  with pytest.raises(store_lib.StoreCorruptError, match="images-00001.npy"):
    store_lib.Store(str(copy))


def test_interrupted_preparation_resumes_and_matches(prepared, tmp_path, monkeypatch):
  from alexnet_jax.data import prepare
  cfg, path = prepared
  root = str(tmp_path / "stores")
  other = _config(root)
  real_write = prepare._write_npy
  calls = []

  def dies_on_the_fifth(p, array):
    calls.append(p)
    if len(calls) == 5:
      raise KeyboardInterrupt  # like Ctrl-C in the middle of the third shard
    real_write(p, array)

  monkeypatch.setattr(prepare, "_write_npy", dies_on_the_fifth)
  with pytest.raises(KeyboardInterrupt):
    prepare.prepare(other, shard_bytes=40 * 72 * 72 * 3)
  final = store_lib.store_path(other)
  assert not os.path.exists(final)  # nothing that looks like a store
  monkeypatch.setattr(prepare, "_write_npy", lambda p, a: (calls.append(p), real_write(p, a)))
  calls.clear()
  prepare.prepare(other, shard_bytes=40 * 72 * 72 * 3)
  assert not any("images-00000" in c or "images-00001" in c for c in calls if "/train/" in c)
  for split in ("train", "validation"):
    for f in sorted(os.listdir(os.path.join(path, split))):
      if f.endswith(".npy"):
        assert pathlib.Path(final, split, f).read_bytes() == pathlib.Path(path, split, f).read_bytes(), f


def test_full_disk_during_preparation_says_how_much_space(tmp_path, monkeypatch):
  from alexnet_jax.data import prepare
  root = str(tmp_path / "stores")
  cfg = _config(root)

  def full(p, array):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(prepare, "_write_npy", full)
  with pytest.raises(store_lib.StoreError, match=r"needs about .* GiB more"):
    prepare.prepare(cfg)
  assert not os.path.exists(os.path.join(store_lib.store_path(cfg), "manifest.json"))


# ----------------------------------------------------------------------------- command line

_BLOCK = "import sys; sys.modules.update(tensorflow=None, tensorflow_datasets=None); "
TOTAL = 16


def _cli(root: str, workdir: pathlib.Path) -> list[str]:
  # Batch 8: an epoch is all 16 steps, so each run evaluates once, at its end, and the run killed
  # after step 8's checkpoint resumes in the middle of an epoch.
  return ["--config=configs/alexnet.py:smoke", "--config.embedded_train_size=128",
          "--config.embedded_eval_size=64", f"--config.input.store_dir={root}",
          "--config.model.width=0.25", "--config.batch_size=8", "--config.eval_batch_size=32",
          f"--config.num_train_steps={TOTAL}", "--config.log_every_steps=4",
          "--config.checkpoint_every_steps=8", f"--workdir={workdir}"]


def _start(args: list[str], log: pathlib.Path) -> subprocess.Popen:
  """main.py with TensorFlow and TFDS blocked: importing either fails."""
  code = _BLOCK + "import runpy; sys.argv = ['main.py'] + sys.argv[1:]; runpy.run_path('main.py', run_name='__main__')"
  return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=subprocess_env(),
                          stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _params(workdir: pathlib.Path, step: int) -> dict[str, np.ndarray]:
  import orbax.checkpoint as ocp
  tree = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


@pytest.mark.timeout(900)
def test_training_without_tensorflow_resumes_bit_identical_after_kill(prepared, tmp_path):
  cfg, _ = prepared
  root = cfg.input.store_dir
  ref, run = tmp_path / "ref", tmp_path / "run"
  p = _start(_cli(root, ref), tmp_path / "ref.txt")
  assert p.wait(timeout=300) == 0, (tmp_path / "ref.txt").read_text()[-3000:]
  log = (tmp_path / "ref.txt").read_text()
  assert "TensorBoard's writer needs TensorFlow" in log and "Final eval at step 16" in log
  # Centre and 10-crop evaluation from the store, still without TensorFlow; the centre crop
  # scores exactly what training's evaluation scored.
  p = _start(_cli(root, ref) + ["--mode=eval", "--protocols=center,10crop", "--sets=validation"],
             tmp_path / "eval.txt")
  p.wait(timeout=300)
  log = (tmp_path / "eval.txt").read_text()
  assert p.returncode == 0, log[-3000:]
  top1 = json.loads((ref / "summary.json").read_text())["eval"]["top1"]
  rows = [line for line in log.splitlines() if line.startswith("| center | validation |")]
  assert rows and f"| {100 * top1:.2f} |" in rows[0], log[-2000:]
  assert any(line.startswith("| 10crop | validation | 10 |") for line in log.splitlines()), log[-2000:]
  # kill -9 once the checkpoint of step 8 exists; the rerun resumes from it.
  p = _start(_cli(root, run), tmp_path / "run1.txt")
  end = time.monotonic() + 300
  while not (run / "checkpoints" / "8" / "state").is_dir() and p.poll() is None and time.monotonic() < end:
    time.sleep(0.02)
  p.send_signal(signal.SIGKILL)
  assert p.wait() == -signal.SIGKILL, "the run ended before it could be killed"
  p = _start(_cli(root, run), tmp_path / "run2.txt")
  assert p.wait(timeout=300) == 0, (tmp_path / "run2.txt").read_text()[-3000:]
  assert "Resuming from step" in (tmp_path / "run2.txt").read_text()
  a, b = _params(ref, TOTAL), _params(run, TOTAL)
  differ = [k for k in a if not np.array_equal(a[k], b[k])]
  assert not differ, differ[:5]


def test_the_stream_path_stays_selectable(prepared, tmp_path):
  from alexnet_jax import train
  cfg = _config(cfg_root := str(tmp_path / "no-store"), **{
      "input.pipeline": "stream", "num_train_steps": 3, "log_every_steps": 3, "async_checkpoints": False})
  _, summary = train.train_and_evaluate(cfg, str(tmp_path / "run"))
  assert summary["done"] and summary["eval"]["num_examples"] == 64
  assert not os.path.exists(cfg_root)  # nothing was prepared
