"""The predict command (alexnet_jax/predict.py): image listing, class labels, and top-k on the shared trained run."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from alexnet_jax import predict
from alexnet_jax.data import embedded
from tests.conftest import TRAINED_STEPS
from tests.conftest import tiny_train_config


def test_class_labels_resolve_wnid_folders_and_plain_names():
  labels = predict.class_labels(("n01440764", "dog"), 2)
  assert (labels[0].name, labels[0].wnid) == ("tench", "n01440764")
  assert (labels[1].name, labels[1].wnid) == ("dog", "")
  assert predict.class_labels((), 1000)[0] == predict.Label(0, "tench", "n01440764")


def test_missing_images_are_clear(tmp_path):
  with pytest.raises(FileNotFoundError, match="neither an image file nor a folder"):
    predict.list_images(str(tmp_path / "nope"))
  (tmp_path / "notes.txt").write_text("x")
  assert predict.list_images(str(tmp_path / "notes.txt")) == [str(tmp_path / "notes.txt")]  # a file is taken as given
  with pytest.raises(FileNotFoundError, match="No images"):
    predict.list_images(str(tmp_path))


# ----------------------------------------------------------------------------- on the trained run


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> str:
  """Three rendered shapes of the embedded dataset (classes 0, 3, 7) as PNG files."""
  folder = tmp_path_factory.mktemp("images")
  for i, label in enumerate([0, 3, 7]):
    Image.fromarray(embedded.render(np.random.default_rng(i), label)).save(folder / f"shape{i}.png")
  return str(folder)


def test_predict_prints_topk_names_and_writes_json(trained_run, images, tmp_path, capsys):
  out_json = str(tmp_path / "pred.json")
  records = predict.run(tiny_train_config(), str(trained_run.workdir), images, topk=3, json_path=out_json)
  printed = capsys.readouterr().out
  assert [os.path.basename(r["file"]) for r in records] == ["shape0.png", "shape1.png", "shape2.png"]
  for r in records:
    assert len(r["top"]) == 3
    probs = [t["prob"] for t in r["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-5
    assert all(t["name"] == embedded.CLASS_NAMES[t["index"]] for t in r["top"])
    assert r["top"][0]["name"] in printed
  saved = json.load(open(out_json))
  assert saved["step"] == TRAINED_STEPS and saved["predictions"] == records
  # The printed classes and probabilities are the trained model's own: softmax of its logits on the
  # eval crop of each file, computed here without the evaluator.
  import jax
  import tensorflow as tf
  from alexnet_jax import runtime
  from alexnet_jax.data import augment
  state = trained_run.state
  preprocess = augment.eval_preprocess(tiny_train_config().input)
  x = np.stack([preprocess(augment.decode_rgb(tf.io.read_file(r["file"]))).numpy() for r in records])
  probs = np.asarray(jax.nn.softmax(state.apply_fn(runtime.model_variables(state), x, train=False), -1))
  for r, p in zip(records, probs):
    assert [t["index"] for t in r["top"]] == list(np.argsort(-p)[:3])
    np.testing.assert_allclose([t["prob"] for t in r["top"]], np.sort(p)[::-1][:3], rtol=1e-4, atol=1e-6)


def test_predict_skips_unreadable_files_and_names_them(trained_run, images, tmp_path, capsys):
  folder = tmp_path / "mixed"
  folder.mkdir()
  for name in ("shape0.png", "shape2.png"):
    (folder / name).write_bytes(open(os.path.join(images, name), "rb").read())
  (folder / "broken.jpg").write_bytes(b"not an image at all")
  (folder / "empty.png").write_bytes(b"")
  out_json = str(tmp_path / "pred.json")
  records = predict.run(tiny_train_config(), str(trained_run.workdir), str(folder), topk=2, json_path=out_json)
  assert [os.path.basename(r["file"]) for r in records] == ["shape0.png", "shape2.png"]
  printed = capsys.readouterr().out
  assert "Skipped 2 unreadable file(s) of 4:" in printed
  assert str(folder / "broken.jpg") in printed and str(folder / "empty.png") in printed
  assert sorted(os.path.basename(p) for p in json.load(open(out_json))["skipped"]) == ["broken.jpg", "empty.png"]


def test_predict_with_nothing_readable_is_a_user_error(trained_run, tmp_path):
  from alexnet_jax.errors import UserError
  folder = tmp_path / "bad"
  folder.mkdir()
  (folder / "a.jpg").write_bytes(b"garbage")
  (folder / "b.png").write_bytes(b"\x89PNG but cut")
  with pytest.raises(UserError, match="None of the 2 file"):
    predict.run(tiny_train_config(), str(trained_run.workdir), str(folder))
