"""The prepared store's train order and sharding, checked row by row (each stored image carries its row).

Consecutive epochs must draw different orders (a reshuffle that stops is a silent change of the
recipe), every epoch visits each kept row once, and the slices of n processes are disjoint and
concatenate to the global batch. Also: eval shards, the store's checks and its error messages.
No TensorFlow: the store is written from arrays.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.data import prepare
from alexnet_jax.data import store as store_lib
from alexnet_jax.data import store_layout

SIZE = 8  # stored side; the smoke config crops 64 px, so the store check is not used here
N_TRAIN, N_EVAL = 50, 13


def _config(root: str, **fields):
  c = alexnet_config.get_config("smoke")
  c.unlock()
  c.embedded_train_size, c.embedded_eval_size = N_TRAIN, N_EVAL
  c.input.store_dir = root
  c.input.image_size, c.input.resize_size = SIZE, SIZE
  c.batch_size, c.eval_batch_size = 8, 4
  c.update_from_flattened_dict(dict(fields))
  c.lock()
  return c


def _images(n: int, offset: int = 0) -> np.ndarray:
  """uint8 [n, S, S, 3]; pixel (0, 0, 0) of row i is i + offset (rows < 256)."""
  images = np.zeros((n, SIZE, SIZE, 3), np.uint8)
  images[:, 0, 0, 0] = np.arange(n) + offset
  images[:, 1, 1, 1] = 255 - np.arange(n)
  return images


@pytest.fixture(scope="module")
def store_config(tmp_path_factory):
  cfg = _config(str(tmp_path_factory.mktemp("stores")))
  prepare.write_arrays(cfg, {"train": (_images(N_TRAIN), np.arange(N_TRAIN) % 10),
                             "validation": (_images(N_EVAL, 100), np.arange(N_EVAL) % 7)},
                       [f"c{i}" for i in range(10)], shard_bytes=7 * SIZE * SIZE * 3)  # 7 rows a shard
  return cfg


def _rows(batch) -> np.ndarray:
  """The store rows a batch holds, read back from the images (and checked against the labels)."""
  rows = batch["image"][:, 0, 0, 0].astype(np.int64)
  np.testing.assert_array_equal(batch["image"][:, 1, 1, 1], 255 - rows)
  np.testing.assert_array_equal(batch["label"], rows % 10)
  return rows


def _epochs(cfg, epochs: int, **kw) -> list[np.ndarray]:
  steps = N_TRAIN // cfg.batch_size
  it = store_lib.train_batches(cfg, **kw)
  return [np.concatenate([_rows(next(it)) for _ in range(steps)]) for _ in range(epochs)]


def test_consecutive_epochs_draw_different_orders(store_config):
  epochs = _epochs(store_config, 4)
  kept = (N_TRAIN // 8) * 8
  for order in epochs:
    assert len(order) == kept and len(set(order.tolist())) == kept  # each kept row once
    assert set(order.tolist()) <= set(range(N_TRAIN))
    assert not np.array_equal(order, np.sort(order))  # shuffled, not in store order
  for a in range(4):
    for b in range(a + 1, 4):
      assert not np.array_equal(epochs[a], epochs[b]), (a, b)
  # The two rows each epoch drops differ between epochs, so every row is seen.
  assert set(np.concatenate(epochs).tolist()) == set(range(N_TRAIN))


def test_the_order_is_a_function_of_seed_and_step_only(store_config):
  first = _epochs(store_config, 2)
  again = _epochs(store_config, 2)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  # Resuming mid-epoch 1 reads the same rows as the uninterrupted stream.
  steps = N_TRAIN // 8
  resumed = store_lib.train_batches(store_config, start_step=steps + 2)
  np.testing.assert_array_equal(_rows(next(resumed)), first[1][16:24])
  # Another seed, another order; epoch_order matches what train_batches read.
  other = _epochs(_config(store_config.input.store_dir, seed=1), 1)[0]
  assert not np.array_equal(other, first[0])
  np.testing.assert_array_equal(store_lib.epoch_order(0, 1, N_TRAIN)[:steps * 8], first[1])


@pytest.mark.parametrize("count", [2, 4, 8])
def test_process_slices_are_disjoint_and_make_the_global_batch(store_config, count):
  steps = 2 * (N_TRAIN // 8) + 1  # past an epoch boundary
  whole = store_lib.train_batches(store_config)
  shards = [store_lib.train_batches(store_config, process_index=p, process_count=count) for p in range(count)]
  for _ in range(steps):
    want = _rows(next(whole))
    parts = [_rows(next(s)) for s in shards]
    assert all(len(p) == 8 // count for p in parts)
    together = np.concatenate(parts)
    assert len(set(together.tolist())) == 8  # no overlap, nothing left out
    np.testing.assert_array_equal(together, want)


def test_batch_rows_slices_for_many_shapes():
  for n, batch, count in [(100, 12, 3), (64, 16, 4), (31, 6, 2), (9, 9, 1)]:
    steps = n // batch
    for step in range(3 * steps):
      parts = [store_lib.batch_rows(5, step, n, batch, p, count) for p in range(count)]
      together = np.concatenate(parts)
      epoch, k = divmod(step, steps)
      np.testing.assert_array_equal(together, store_lib.epoch_order(5, epoch, n)[k * batch:(k + 1) * batch])
      assert len(set(together.tolist())) == batch
  order = store_lib.epoch_order(3, 2, 40)
  assert not order.flags.writeable and sorted(order.tolist()) == list(range(40))
  assert not np.array_equal(order, store_lib.epoch_order(3, 3, 40))
  assert not np.array_equal(order, store_lib.epoch_order(4, 2, 40))


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_eval_shards_cover_the_split_once_in_order(store_config, count):
  batches_each = store_lib.num_eval_batches(store_config, process_count=count, batch_size=count * 2)
  largest = -(-N_EVAL // count)
  assert batches_each == max(1, -(-largest // 2))
  seen = []
  for p in range(count):
    batches = list(store_lib.eval_batches(store_config, process_index=p, process_count=count,
                                          batch_size=count * 2))
    assert len(batches) == batches_each
    rows = []
    for b in batches:
      assert b["image"].shape == (2, SIZE, SIZE, 3) and b["mask"].dtype == np.float32
      real = b["mask"] == 1
      assert set(np.unique(b["mask"]).tolist()) <= {0.0, 1.0}
      assert not b["image"][~real].any() and not b["label"][~real].any()
      ids = b["image"][real, 0, 0, 0].astype(int) - 100
      np.testing.assert_array_equal(b["label"][real], ids % 7)
      rows.extend(ids.tolist())
    sizes = N_EVAL // count + (1 if p < N_EVAL % count else 0)
    assert len(rows) == sizes
    seen.extend(rows)
  assert seen == list(range(N_EVAL))


def test_gather_keeps_the_order_asked_across_shards(store_config):
  store = store_lib.open_store(store_config, prepare_if_missing=False)
  rows = np.array([49, 0, 7, 6, 13, 14, 48, 21, 20, 3])
  np.testing.assert_array_equal(store.gather("train", rows)[:, 0, 0, 0], rows)
  assert store.count("train") == N_TRAIN and store.count("validation") == N_EVAL
  assert len(store.manifest["splits"]["train"]["shards"]) == 8  # 7 rows a shard
  info = store_lib.get_info(store_config)
  assert (info.name, info.num_train, info.num_eval, info.num_classes) == ("embedded", N_TRAIN, N_EVAL, 10)
  assert info.class_names == tuple(f"c{i}" for i in range(10))


def test_batch_sizes_the_processes_cannot_share_are_refused(store_config):
  with pytest.raises(store_lib.StoreError, match=r"config.batch_size=8 must be a positive multiple.*\(3\)"):
    next(store_lib.train_batches(store_config, process_count=3))
  big = _config(store_config.input.store_dir, batch_size=64)
  with pytest.raises(store_lib.StoreError, match=r"^config\.batch_size=64 is larger than the train split \(50 examples\); lower the batch size\.$"):
    next(store_lib.train_batches(big))
  with pytest.raises(store_lib.StoreError, match=r"eval batch size=0 must"):
    store_lib._local(0, 1, "eval batch size")  # noqa: SLF001
  assert store_lib._local(12, 3, "x") == 4  # noqa: SLF001
  with pytest.raises(store_lib.StoreError, match="not in the store"):
    store_lib.open_store(store_config, prepare_if_missing=False).count("test")


def test_a_missing_store_is_named_without_preparing(tmp_path):
  cfg = _config(str(tmp_path))
  with pytest.raises(store_lib.StoreError, match=r"^No prepared store at .*\. Run: python main\.py --config=\.\.\. --mode=prepare$"):
    store_lib.open_store(cfg, prepare_if_missing=False)
  assert not os.listdir(tmp_path)


def test_store_path_names_and_size_rules(tmp_path):
  cfg = _config(str(tmp_path))
  assert store_lib.store_path(cfg) == os.path.join(str(tmp_path), f"embedded-{N_TRAIN}-{N_EVAL}-{SIZE}px")
  bigger = _config(str(tmp_path), **{"input.store_size": 12})
  assert store_lib.stored_size(bigger) == 12
  with pytest.raises(store_lib.StoreError, match="store_size=6 is smaller than .*image_size=8"):
    store_lib.stored_size(_config(str(tmp_path), **{"input.store_size": 6}))
  assert store_layout.split_dir("train[:10%]") == "train_10_"


def test_a_store_with_another_format_or_config_is_refused(store_config, tmp_path):
  path = store_lib.store_path(store_config)
  manifest = json.loads(open(os.path.join(path, store_lib.MANIFEST)).read())
  store = store_lib.Store(path)
  other = _config(store_config.input.store_dir, embedded_train_size=51)
  with pytest.raises(store_lib.StoreMismatchError, match=r"embedded_train_size: store 50, config 51\)\. Set config\.input\.store_dir to another folder or delete this store\.$"):
    store.check_matches(other)
  copy = tmp_path / "copy"
  copy.mkdir()
  (copy / store_lib.MANIFEST).write_text(json.dumps({**manifest, "format_version": 0}))
  with pytest.raises(store_lib.StoreMismatchError, match=r"format 0; this version reads format 1\. Delete it and run --mode=prepare again\.$"):
    store_lib.Store(str(copy))
  (copy / store_lib.MANIFEST).write_text("{not json")
  with pytest.raises(store_lib.StoreCorruptError, match=r"cannot be read \(.*\)\. Delete .* and run --mode=prepare again\.$"):
    store_lib.Store(str(copy))


def test_the_permutation_is_pinned_across_versions():
  """Resuming a run under a newer version must read the same rows: the order is part of the recipe."""
  assert store_lib.epoch_order(0, 0, 10).tolist() == [8, 1, 0, 6, 7, 4, 3, 2, 9, 5]
  assert store_lib.epoch_order(7, 3, 12).tolist() == [1, 11, 8, 0, 9, 10, 5, 3, 2, 7, 6, 4]


def test_default_root_and_names(tmp_path, monkeypatch):
  cfg = _config("", **{"input.resize_size": 10})  # no store_dir: $ALEXNET_JAX_DATA, else ~/alexnet_jax_data
  monkeypatch.setenv("ALEXNET_JAX_DATA", str(tmp_path))
  assert store_lib.store_path(cfg) == str(tmp_path / f"embedded-{N_TRAIN}-{N_EVAL}-10px")
  monkeypatch.delenv("ALEXNET_JAX_DATA")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert store_lib.stored_size(cfg) == 10
  assert store_lib.store_path(cfg) == str(tmp_path / "home" / "alexnet_jax_data" / f"embedded-{N_TRAIN}-{N_EVAL}-10px")
  # An image folder: its absolute path is the source, its name and a checksum of the path name the store.
  folder = tmp_path / "my photos"
  folder.mkdir()
  fcfg = _config(str(tmp_path / "s"), dataset=str(folder))
  fields = store_lib.source_fields(fcfg)
  assert fields == {"dataset": str(folder), "train_split": "train", "eval_split": "validation"}
  import zlib
  crc = format(zlib.crc32(str(folder).encode()), "08x")
  assert store_lib.store_path(fcfg) == str(tmp_path / "s" / f"my_photos-{crc}-{SIZE}px")
  assert store_lib.source_fields(_config("", dataset="cifar10"))["dataset"] == "cifar10"


def test_file_crc32_reads_in_chunks(tmp_path):
  import zlib
  data = bytes(range(256)) * 41
  (tmp_path / "f").write_bytes(data)
  assert store_lib.file_crc32(str(tmp_path / "f")) == zlib.crc32(data)
  assert store_lib.file_crc32(str(tmp_path / "f"), chunk=100) == zlib.crc32(data)
  (tmp_path / "e").write_bytes(b"")
  assert store_lib.file_crc32(str(tmp_path / "e")) == 0


def _copy_store(store_config, tmp_path):
  import shutil
  src = store_lib.store_path(store_config)
  dest = tmp_path / "copy"
  shutil.copytree(src, dest)
  return dest, json.loads((dest / store_lib.MANIFEST).read_text())


def test_damaged_shards_and_manifests_are_named(store_config, tmp_path):
  dest, manifest = _copy_store(store_config, tmp_path)
  store_lib.Store(str(dest)).verify()  # intact
  labels = dest / "train" / "labels-00002.npy"
  data = bytearray(labels.read_bytes())
  data[-1] ^= 1
  labels.write_bytes(bytes(data))
  with pytest.raises(store_lib.StoreCorruptError, match=r"labels-00002\.npy is damaged \(its checksum does not match the manifest\)\. Delete .*copy and run --mode=prepare again\.$"):
    store_lib.Store(str(dest)).verify()
  verifier = store_lib.Verifier(store_lib.Store(str(dest)))
  with pytest.raises(store_lib.StoreCorruptError, match="labels-00002"):
    verifier.check(wait=True)
  labels.write_bytes(bytes(data[:-4]))
  with pytest.raises(store_lib.StoreCorruptError, match=r"labels-00002\.npy is damaged \(\d+ bytes, the manifest"):
    store_lib.Store(str(dest))
  labels.unlink()
  with pytest.raises(store_lib.StoreCorruptError, match=r"labels-00002\.npy is damaged \(missing\)\. Delete .*copy and run --mode=prepare again\.$"):
    store_lib.Store(str(dest))
  (dest / store_lib.MANIFEST).unlink()
  with pytest.raises(store_lib.StoreError, match=r"is not a prepared store \(no manifest\.json\)\. Run --mode=prepare\.$"):
    store_lib.Store(str(dest))


def test_a_shard_of_the_wrong_shape_or_unreadable_is_named(store_config, tmp_path):
  dest, manifest = _copy_store(store_config, tmp_path)
  shard = manifest["splits"]["validation"]["shards"][0]
  images = dest / "validation" / shard["images"]
  np.save(images, np.zeros((shard["count"], SIZE, SIZE - 1, 3), np.uint8))
  shard["images_bytes"] = images.stat().st_size
  (dest / store_lib.MANIFEST).write_text(json.dumps(manifest))
  with pytest.raises(store_lib.StoreCorruptError, match=rf"holds \({shard['count']}, 8, 7, 3\), expected \({shard['count']}, 8, 8, 3\)\. Re-prepare the store\.$"):
    store_lib.Store(str(dest))
  images.write_bytes(b"x" * shard["images_bytes"])  # the right size, not a .npy file
  with pytest.raises(store_lib.StoreCorruptError, match=r"cannot be read \(.*\)\. Delete .* and run --mode=prepare again\.$"):
    store_lib.Store(str(dest))


def test_labels_are_int32_and_an_intact_verifier_raises_nothing(store_config):
  store = store_lib.open_store(store_config, prepare_if_missing=False)
  assert store.labels("train").dtype == np.int32 and store.size == SIZE
  assert store.labels("validation").tolist() == (np.arange(N_EVAL) % 7).tolist()
  verifier = store_lib.Verifier(store)
  verifier.check(wait=True)
  assert verifier.error is None
  assert store_lib.open_store(store_config, prepare_if_missing=False) is store  # opened once
  with pytest.raises(store_lib.StoreError, match=r"Split 'test' is not in the store .* \['train', 'validation'\]\)\. Prepare a store for this split\.$"):
    store.labels("test")
  missing_split = _config(store_config.input.store_dir, eval_split="test")
  with pytest.raises(store_lib.StoreMismatchError, match="split 'test': not in the store"):
    store.check_matches(missing_split)


def test_one_eval_batch_at_least_and_a_last_partial_one(store_config):
  assert store_lib.num_eval_batches(store_config, batch_size=N_EVAL) == 1
  assert store_lib.num_eval_batches(store_config, batch_size=100) == 1
  assert store_lib.num_eval_batches(store_config, batch_size=4) == 4  # 13 → 4 + 4 + 4 + 1
  last = list(store_lib.eval_batches(store_config, batch_size=4))[-1]
  assert last["mask"].tolist() == [1.0, 0.0, 0.0, 0.0] and last["label"].dtype == np.int32
  assert last["image"].dtype == np.uint8 and last["image"].shape == (4, SIZE, SIZE, 3)
  assert store_lib.num_eval_batches(store_config, split="train", batch_size=8) == 7  # 50 → 6·8 + 2


@pytest.mark.parametrize("count,local", [(5, 1), (2, 1), (3, 2), (13, 1), (4, 4), (1, 13), (6, 2)])
def test_eval_batch_counts_follow_the_largest_shard(store_config, count, local):
  largest = -(-N_EVAL // count)  # the first N_EVAL % count processes hold one row more
  assert store_lib.num_eval_batches(store_config, process_count=count, batch_size=count * local) == -(-largest // local)


def test_an_eval_batch_size_the_processes_cannot_share_is_named(store_config):
  with pytest.raises(store_lib.StoreError, match=r"^eval batch size=3 must be a positive multiple of the number "
                                                 r"of processes \(2\)\.$"):
    store_lib.num_eval_batches(store_config, process_count=2, batch_size=3)
  with pytest.raises(store_lib.StoreError, match=r"^eval batch size=5 must"):
    next(store_lib.eval_batches(store_config, process_count=2, batch_size=5))


def test_eval_batches_of_another_split_count_that_split(store_config):
  batches = list(store_lib.eval_batches(store_config, split="train", process_index=1, process_count=2, batch_size=8))
  assert len(batches) == 7  # 25 rows a process, 4 a batch
  rows = np.concatenate([b["image"][b["mask"] == 1, 0, 0, 0] for b in batches]).tolist()
  assert rows == list(range(25, 50))


def test_a_store_opened_directly_maps_its_shards(store_config):
  """Store() itself, not the cached one open_store returns (whose first opening one test only sees)."""
  store = store_lib.Store(store_lib.store_path(store_config))
  assert store.class_names == tuple(f"c{i}" for i in range(10)) and store.size == SIZE
  shards = store._images["train"]  # noqa: SLF001 - memory-mapped, never loaded whole
  assert len(shards) == 8 and all(isinstance(s, np.memmap) for s in shards)
  assert store.labels("train").dtype == np.int32 and store.labels("train").tolist() == (np.arange(N_TRAIN) % 10).tolist()
  np.testing.assert_array_equal(store.gather("validation", np.array([12, 0]))[:, 0, 0, 0], [112, 100])


def test_an_empty_split_and_an_empty_shard_file(tmp_path):
  cfg = _config(str(tmp_path / "stores"))
  path = prepare.write_arrays(cfg, {"train": (_images(3), np.arange(3)),
                                    "validation": (_images(0), np.zeros(0, int))}, ["a", "b", "c"])
  store = store_lib.Store(path)
  assert store.count("validation") == 0
  assert store.labels("validation").dtype == np.int32 and store.labels("validation").shape == (0,)
  shard = os.path.join(path, "train", "images-00000.npy")
  open(shard, "wb").close()  # present, but empty
  with pytest.raises(store_lib.StoreCorruptError, match=r"images-00000\.npy is damaged \(0 bytes, the manifest says \d+\)"):
    store_lib.Store(path)


def test_batch_rows_defaults_to_the_whole_batch_of_one_process():
  np.testing.assert_array_equal(store_lib.batch_rows(5, 0, 100, 10), store_lib.epoch_order(5, 0, 100)[:10])
  np.testing.assert_array_equal(store_lib.batch_rows(5, 11, 100, 10), store_lib.epoch_order(5, 1, 100)[10:20])


def test_training_from_a_damaged_store_stops_with_the_shard_named(tmp_path):
  import time
  cfg = _config(str(tmp_path))
  path = prepare.write_arrays(cfg, {"train": (_images(N_TRAIN), np.arange(N_TRAIN) % 10),
                                    "validation": (_images(N_EVAL), np.arange(N_EVAL) % 10)},
                              [f"c{i}" for i in range(10)], shard_bytes=7 * SIZE * SIZE * 3)
  shard = os.path.join(path, "train", "images-00003.npy")
  data = bytearray(open(shard, "rb").read())
  data[-1] ^= 0xFF  # one byte, the size kept: only the checksum tells
  open(shard, "wb").write(bytes(data))
  batches = store_lib.train_batches(cfg)
  with pytest.raises(store_lib.StoreCorruptError, match=r"images-00003\.npy is damaged \(its checksum"):
    for _ in range(500):
      next(batches)
      time.sleep(0.01)


def test_the_verifier_never_holds_the_process_open(store_config):
  verifier = store_lib.Verifier(store_lib.Store(store_lib.store_path(store_config)))
  assert verifier._thread.daemon and verifier._thread.name == "store-verify"  # noqa: SLF001
  verifier.check(wait=True)


def test_local_batch_sizes():
  assert store_lib._local(1, 1, "x") == 1  # noqa: SLF001 - a batch of one is allowed
  assert store_lib._local(6, 2, "x") == 3  # noqa: SLF001


def test_a_missing_store_is_prepared_and_a_prepared_again_store_reopened(tmp_path, monkeypatch):
  cfg = _config(str(tmp_path))
  calls = []

  def fake_prepare(config):
    calls.append(config)
    return prepare.write_arrays(config, {"train": (_images(N_TRAIN), np.arange(N_TRAIN) % 10),
                                         "validation": (_images(N_EVAL), np.arange(N_EVAL) % 10)}, ["x"] * 10)

  monkeypatch.setattr(prepare, "prepare", fake_prepare)
  os.makedirs(store_lib.store_path(cfg))  # a folder without a manifest is not a store
  with pytest.raises(store_lib.StoreError, match="^No prepared store at"):
    store_lib.open_store(cfg, prepare_if_missing=False)
  first = store_lib.open_store(cfg)  # prepares by default
  assert calls == [cfg] and first.class_names == ("x",) * 10
  assert store_lib.open_store(cfg) is first and len(calls) == 1
  import time
  time.sleep(0.01)
  prepare.write_arrays(cfg, {"train": (_images(N_TRAIN), np.arange(N_TRAIN) % 10),
                             "validation": (_images(N_EVAL), np.arange(N_EVAL) % 10)}, ["y"] * 10)
  again = store_lib.open_store(cfg)  # a new manifest: opened anew
  assert again is not first and again.class_names == ("y",) * 10


def test_a_manifest_without_its_source_is_another_config(store_config, tmp_path):
  dest, manifest = _copy_store(store_config, tmp_path)
  del manifest["source"]
  (dest / store_lib.MANIFEST).write_text(json.dumps(manifest))
  with pytest.raises(store_lib.StoreMismatchError, match=r"\(dataset: store None, config 'embedded'; train_split: "
                                                         r"store None, config 'train'; "):
    store_lib.Store(str(dest)).check_matches(store_config)


def test_check_without_wait_does_not_wait():
  import threading
  import time
  release = threading.Event()

  class Slow:
    def verify(self):
      release.wait(5)

  verifier = store_lib.Verifier(Slow())
  start = time.monotonic()
  verifier.check()
  assert time.monotonic() - start < 2
  release.set()
  verifier.check(wait=True)
