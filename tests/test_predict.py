"""The ImageNet class table, and the predict and eval commands on a checkpoint trained for a few steps."""

import json
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from alexnet_jax.eval import run as eval_run
from alexnet_jax import predict
from alexnet_jax.data import embedded
from alexnet_jax.data import imagenet_classes
from alexnet_jax.configs import alexnet as alexnet_config


def test_class_table_standard_order():
  t = imagenet_classes.load()
  assert len(t.wnids) == len(t.names) == 1000 == len(set(t.wnids))
  assert (t.wnids[0], t.names[0]) == ("n01440764", "tench")
  assert (t.wnids[999], t.names[999]) == ("n15075141", "toilet tissue")
  assert list(t.wnids) == sorted(t.wnids)  # TFDS and torchvision both index sorted wnids
  assert t.index_of("n01443537") == 1
  with pytest.raises(KeyError, match="ILSVRC-2012"):
    t.index_of("n99999999")


def test_corrupt_class_table_is_an_error():
  with pytest.raises(ValueError, match="index 1"):
    imagenet_classes.parse_table("0\tn01440764\ttench\n2\tn01443537\tgoldfish\n")


@pytest.mark.shared_data
def test_sample_folders_map_to_the_right_index_and_name(shared_data):
  """Each ILSVRC-2012 sample lives in <wnid>/<wnid>_<name>.JPEG: wnid → index → wnid and name agree."""
  t = imagenet_classes.load()
  with tarfile.open(shared_data / "imagenet-sample-1000.tar") as tar:
    files = [m.name for m in tar.getmembers() if m.isfile() and m.name.endswith(".JPEG")]
  assert len(files) == 1000
  seen = set()
  for f in files:
    wnid = f.split("/")[-2]
    idx = t.index_of(wnid)
    seen.add(idx)
    assert t.wnids[idx] == wnid
    file_name = os.path.splitext(os.path.basename(f))[0].split("_", 1)[1].replace("_", " ").lower()
    # torchvision disambiguates two names the file list does not ("crane bird", "maillot tank suit").
    assert t.names[idx].lower().startswith(file_name), (wnid, file_name, t.names[idx])
  assert seen == set(range(1000))


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


# ----------------------------------------------------------------------------- on a trained checkpoint


def _tiny_config(data_dir: str):
  c = alexnet_config.get_config("smoke,width=0.25")
  c.model.fc_dim = 64
  c.embedded_train_size = 64
  c.embedded_eval_size = 10
  c.data_dir = data_dir
  c.batch_size = 16
  c.eval_batch_size = 20
  c.num_train_steps = 2
  c.log_every_steps = 1
  c.async_checkpoints = False
  return c


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  from alexnet_jax import train
  root = tmp_path_factory.mktemp("predict")
  config = _tiny_config(str(root / "tfds"))
  workdir = str(root / "run")
  train.train_and_evaluate(config, workdir)
  images = root / "images"
  images.mkdir()
  for i, label in enumerate([0, 3, 7]):
    Image.fromarray(embedded.render(np.random.default_rng(i), label)).save(images / f"shape{i}.png")
  return config, workdir, str(images)


def test_predict_prints_topk_names_and_writes_json(trained, tmp_path, capsys):
  config, workdir, images = trained
  out_json = str(tmp_path / "pred.json")
  records = predict.run(config, workdir, images, topk=3, json_path=out_json)
  printed = capsys.readouterr().out
  assert [os.path.basename(r["file"]) for r in records] == ["shape0.png", "shape1.png", "shape2.png"]
  for r in records:
    assert len(r["top"]) == 3
    probs = [t["prob"] for t in r["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-5
    assert all(t["name"] == embedded.CLASS_NAMES[t["index"]] for t in r["top"])
    assert r["top"][0]["name"] in printed
  saved = json.load(open(out_json))
  assert saved["step"] == 2 and saved["predictions"] == records
  # The printed classes and probabilities are the restored model's own: softmax of its logits on the
  # eval crop of each file, computed here without the evaluator.
  import jax
  import tensorflow as tf
  from alexnet_jax import runtime
  from alexnet_jax.data import augment
  _, state, _ = runtime.restore_for_inference(config, workdir)
  preprocess = augment.eval_preprocess(config.input)
  x = np.stack([preprocess(augment.decode_rgb(tf.io.read_file(r["file"]))).numpy() for r in records])
  probs = np.asarray(jax.nn.softmax(state.apply_fn(runtime.model_variables(state), x, train=False), -1))
  for r, p in zip(records, probs):
    assert [t["index"] for t in r["top"]] == list(np.argsort(-p)[:3])
    np.testing.assert_allclose([t["prob"] for t in r["top"]], np.sort(p)[::-1][:3], rtol=1e-4, atol=1e-6)


def test_eval_command_center_and_10crop(trained, capsys):
  config, workdir, _ = trained
  out = eval_run.evaluate_checkpoint(config, workdir, protocols=("center", "10crop"), sets=("validation",))
  assert out["step"] == 2
  for protocol, views in (("center", 1), ("10crop", 10)):
    r = out["results"][protocol]["validation"]
    assert r["num_examples"] == 10 and r["views"] == views and 0 <= r["top1"] <= r["top5"] <= 1
  # The centre protocol scores the same crops as the training loop's evaluation does (the loss
  # pins the crops and logits; with a barely trained model top-1/top-5 can agree by chance).
  from alexnet_jax import runtime
  rt, state, _ = runtime.restore_for_inference(config, workdir)
  direct = rt.evaluate(state, split="validation")
  np.testing.assert_allclose(out["results"]["center"]["validation"]["loss"], direct["loss"], rtol=1e-5)
  np.testing.assert_allclose(out["results"]["center"]["validation"]["top1"], direct["top1"], atol=1e-6)
  np.testing.assert_allclose(out["results"]["center"]["validation"]["top5"], direct["top5"], atol=1e-6)
  eval_dir = os.path.join(workdir, "eval")
  assert {"step_2.json", "report.md", "per_class_10crop_validation.csv",
          "confusions_center_validation.md"} <= set(os.listdir(eval_dir))
  assert "| 10crop | validation | 10 |" in capsys.readouterr().out


def test_eval_command_missing_step_and_workdir(trained, tmp_path):
  config, workdir, _ = trained
  with pytest.raises(FileNotFoundError, match="available"):
    eval_run.evaluate_checkpoint(config, workdir, step=999)
  with pytest.raises(FileNotFoundError, match="Train first"):
    eval_run.evaluate_checkpoint(config, str(tmp_path / "empty"))


def test_predict_skips_unreadable_files_and_names_them(trained, tmp_path, capsys):
  config, workdir, images = trained
  folder = tmp_path / "mixed"
  folder.mkdir()
  for name in ("shape0.png", "shape2.png"):
    (folder / name).write_bytes(open(os.path.join(images, name), "rb").read())
  (folder / "broken.jpg").write_bytes(b"not an image at all")
  (folder / "empty.png").write_bytes(b"")
  out_json = str(tmp_path / "pred.json")
  records = predict.run(config, workdir, str(folder), topk=2, json_path=out_json)
  assert [os.path.basename(r["file"]) for r in records] == ["shape0.png", "shape2.png"]
  printed = capsys.readouterr().out
  assert "Skipped 2 unreadable file(s) of 4:" in printed
  assert str(folder / "broken.jpg") in printed and str(folder / "empty.png") in printed
  assert sorted(os.path.basename(p) for p in json.load(open(out_json))["skipped"]) == ["broken.jpg", "empty.png"]


def test_predict_with_nothing_readable_is_a_user_error(trained, tmp_path):
  from alexnet_jax.errors import UserError
  config, workdir, _ = trained
  folder = tmp_path / "bad"
  folder.mkdir()
  (folder / "a.jpg").write_bytes(b"garbage")
  (folder / "b.png").write_bytes(b"\x89PNG but cut")
  with pytest.raises(UserError, match="None of the 2 file"):
    predict.run(config, workdir, str(folder))
