"""The neighbours command: penultimate features, the chunked device search, the feature cache, the grids."""

from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax import cli
from alexnet_jax import config_files
from alexnet_jax import models
from alexnet_jax.inspect import features
from alexnet_jax.inspect import neighbours
from tests.conftest import TRAINED_CLI
from tests.conftest import imagenette_slice, tiny_train_config


def brute_force(q: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  d = np.sqrt(((q[:, None, :].astype(np.float64) - base[None].astype(np.float64)) ** 2).sum(-1))
  idx = np.argsort(d, axis=1, kind="stable")[:, :k]
  return np.take_along_axis(d, idx, axis=1), idx


@pytest.mark.parametrize("chunk", [7, 50, 1000])
def test_search_in_chunks_matches_brute_force(chunk):
  rng = np.random.default_rng(0)
  base, q = rng.normal(size=(103, 12)).astype(np.float32), rng.normal(size=(5, 12)).astype(np.float32)
  dist, idx = neighbours.nearest(q, base, k=4, chunk=chunk)  # 103 rows: the last chunk is padded
  want_d, want_i = brute_force(q, base, 4)
  assert dist.shape == idx.shape == (5, 4)
  np.testing.assert_array_equal(idx, want_i)
  np.testing.assert_allclose(dist, want_d, rtol=1e-4)
  assert (np.diff(dist, axis=1) >= 0).all()
  self_d, self_i = neighbours.nearest(base[[3, 99]], base, k=2, chunk=chunk)  # rows of the base find themselves
  assert self_i[:, 0].tolist() == [3, 99] and self_d[:, 0].tolist() == [0.0, 0.0]
  pics = rng.integers(0, 256, size=(30, 4, 4, 3), dtype=np.uint8)  # raw pixels, any shape: flattened
  assert neighbours.nearest(pics[:2], pics, k=1, chunk=chunk)[1][:, 0].tolist() == [0, 1]
  with pytest.raises(neighbours.NeighboursError, match="between 1 and the number of training images"):
    neighbours.nearest(q, base, k=104)


# family → the feature width its config implies (None: traced for shapes only).
FEATURE_DIM = {"alexnet:smoke": lambda m: round(m.fc_dim * m.width),   # fc7
               "resnet:smoke,depth=18": lambda m: round(512 * m.width),  # the pooled last stage
               "googlenet:smoke": None, "squeezenet:smoke": None}


@pytest.mark.parametrize("family", sorted(FEATURE_DIM))
def test_features_are_the_classifier_input(family):
  """Penultimate features · the classifier's weights + bias = the logits (Dense classifiers are run;
  the others are traced for shapes only)."""
  config = config_files.load(family)
  model = models.build_model(config.model, 10)
  size = config.input.image_size
  images = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  init = lambda x: model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x, train=False)  # noqa: E731
  if FEATURE_DIM[family] is None:
    shapes = jax.eval_shape(lambda x: features.penultimate(model.apply, init(x), x), images)
    assert shapes.shape[0] == 2 and shapes.shape[1] > 0 and shapes.dtype == jnp.float32
    return

  def run(x):  # one program (not op by op, and one compilation): the weights, features and logits
    v = init(x)
    return v, features.penultimate(model.apply, v, x), model.apply(v, x, train=False)

  dim = FEATURE_DIM[family](config.model)
  x = jax.random.normal(jax.random.key(1), images.shape)
  variables, feats, logits = jax.jit(run)(x)
  assert feats.shape[0] == 2 and feats.shape[1] > 0 and feats.dtype == jnp.float32
  assert feats.shape == (2, dim)
  flat = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
  params = {jax.tree_util.keystr(p, simple=True, separator="/"): v for p, v in flat}
  (head,) = [k for k, v in params.items() if k.endswith("kernel") and v.shape == (dim, 10)]
  np.testing.assert_allclose(feats @ params[head] + params[head.replace("kernel", "bias")], logits,
                             rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def searched(trained_run, tmp_path_factory):
  """(a copy of the trained run, the result of the neighbours command run on it once): the training
  set's features are computed once for the file and cached in the copy. Tests copy it again before
  writing into it."""
  wd = tmp_path_factory.mktemp("neighbours") / "run"
  shutil.copytree(trained_run.workdir, wd)
  return wd, neighbours.find(tiny_train_config(), str(wd), queries=3, k=4, pixels=16, chunk=500)


def test_neighbours_of_a_trained_run(trained_run, searched, tmp_path):
  wd, result = searched
  config = tiny_train_config()
  step = trained_run.summary["step"]
  feats = np.load(wd / "features" / f"train-{step}.npy", mmap_mode="r")
  assert feats.shape == (2048, int(config.model.fc_dim * config.model.width))  # fc7 of the quarter-width net
  assert np.load(wd / "features" / "train-pixels16.npy", mmap_mode="r").shape == (2048, 16, 16, 3)
  assert np.load(wd / "features" / "validation-labels.npy").shape == (256,)
  meta = json.loads((wd / "features" / f"train-{step}.json").read_text())
  assert meta["count"] == 2048 and meta["step"] == step and meta["model"] == "alexnet"
  assert len(result["queries"]) == 3 and all(len(q["features"]) == len(q["pixels"]) == 4 for q in result["queries"])
  for space in ("features", "pixels"):
    assert os.path.getsize(result[f"{space}_png"]) > 1000
  # A training image's nearest neighbours include itself, at distance 0.
  train = np.asarray(feats[[5, 1000]])
  dist, idx = neighbours.nearest(train, feats, k=3)
  assert 5 in idx[0] and 1000 in idx[1]
  assert dist[:, 0].tolist() == [0.0, 0.0]
  # The cache: a second run reads the features it wrote instead of computing them again.
  mtime = os.path.getmtime(wd / "features" / f"train-{step}.npy")
  again = neighbours.find(config, str(wd), queries=3, k=4, pixels=16, out=str(tmp_path / "again"))
  assert os.path.getmtime(wd / "features" / f"train-{step}.npy") == mtime
  assert again["queries"] == result["queries"]


def test_a_training_image_as_a_query_file_finds_itself(searched, tmp_path):
  """Through the command line: a training image saved as a file has itself as its nearest neighbour
  (the training set's features come from the cache the `searched` run wrote, at the same step)."""
  from PIL import Image
  from alexnet_jax.data import store
  wd = tmp_path / "run"
  shutil.copytree(searched[0], wd)
  square = store.open_store(tiny_train_config()).gather("train", np.array([42]))[0]  # the stored 72×72 square
  images = tmp_path / "queries"
  images.mkdir()
  Image.fromarray(square).save(images / "train42.png")
  (images / "broken.jpg").write_bytes(b"not an image")
  out = tmp_path / "out"
  argv = [a.replace("configs/alexnet.py", "alexnet") for a in TRAINED_CLI]
  assert cli.main(["neighbours", *argv, f"--workdir={wd}", f"--images={images}", "--k=3", "--pixels=16",
                   f"--out={out}"]) == 0
  result = json.loads((out / "neighbours.json").read_text())
  (query,) = result["queries"]
  assert query["query"].endswith("train42.png")
  nearest = query["features"][0]
  assert nearest["index"] == 42 and nearest["distance"] < 1e-3 * query["features"][1]["distance"]
  assert query["pixels"][0]["index"] == 42
  assert (out / "neighbours_features.png").is_file() and (out / "neighbours_pixels.png").is_file()


def test_mistakes_are_one_line(trained_run, tmp_path, capsys):
  argv = [a.replace("configs/alexnet.py", "alexnet") for a in TRAINED_CLI]
  empty = tmp_path / "empty"
  empty.mkdir()
  cases = (([], "--config=<family or file>"),
           ([*argv, f"--workdir={empty}"], "No checkpoints"),
           ([*argv, f"--workdir={trained_run.workdir}", f"--images={empty}"], "No images"),
           ([*argv, f"--workdir={trained_run.workdir}", "--k=0"], "--k=0 must be at least 1"),
           ([*argv, f"--workdir={trained_run.workdir}", "--queries=0"], "--queries=0 must be at least 1"),
           ([*argv, "--config.no_such_field=1"], "config.no_such_field"),
           (["--config=alexnet:smoke", "--bogus=1"], "bogus"))
  assert neighbours.run(["--help"]) == 0 and "--queries" in capsys.readouterr().out
  for args, message in cases:
    assert neighbours.run(args) == 2, args
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, (args, err)
  assert not (trained_run.workdir / "features").exists() and not (trained_run.workdir / "neighbours").exists()


@pytest.mark.shared_data
def test_real_images_in_a_folder_find_their_own_file(shared_data, tmp_path):
  """Imagenette (8 train / 2 val images per class) as an image folder: a training file used as the
  query has its own file as nearest neighbour, so the cached file list is in the features' order."""
  from alexnet_jax import pretrained
  imagenette_slice(shared_data, tmp_path, train=8, val=2)
  config = config_files.load(f"alexnet:smoke,data={tmp_path / 'imagenette'}")
  config.unlock()
  config.model.width, config.batch_size, config.eval_batch_size = 0.25, 16, 16
  config.lock()
  model = models.build_model(config.model, 10)
  # An untrained net embeds consistently too; initialised as one program, not op by op.
  variables = jax.jit(lambda x: model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x,
                                           train=False))(jnp.zeros((1, 64, 64, 3)))
  wd = tmp_path / "run"
  pretrained.save_pretrained(str(wd), variables, config, num_classes=10)
  query = sorted((tmp_path / "imagenette" / "train").rglob("*.JPEG"))[37]
  result = neighbours.find(config, str(wd), images=str(query), k=2, pixels=16)
  (entry,) = result["queries"]
  assert entry["features"][0]["file"] == str(query)
  assert entry["features"][0]["distance"] < 0.1 * entry["features"][1]["distance"]
  files = (wd / "features" / "train-files.txt").read_text().splitlines()
  assert len(files) == 80 and files[entry["features"][0]["index"]] == str(query)
