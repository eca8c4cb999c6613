"""Top-k predictions with readable class names for image files, from a checkpoint.

Names come from the dataset the model was trained on (DatasetInfo.class_names); class
names that are WordNet ids (ImageNet, Imagenette folders) are shown with their English
name, and a 1000-class model whose dataset is not at hand (e.g. an imagenet2012
checkpoint on a machine without ImageNet) uses the checked-in ILSVRC-2012 table
(`data/imagenet_classes.tsv`), so no torchvision or prepared dataset is needed.

  python main.py --config=configs/alexnet.py:smoke --mode=predict --images=photos/ --topk=5
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclasses.dataclass(frozen=True)
class Label:
  index: int
  name: str   # readable name
  wnid: str   # WordNet id where known, else ''


def list_images(path: str) -> list[str]:
  """An image file, or every image under a folder (recursively, sorted)."""
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise FileNotFoundError(f"--images={path!r} is neither an image file nor a folder.")
  found = sorted(os.path.join(root, f) for root, _, files in os.walk(path, followlinks=True) for f in files
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  if not found:
    raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {path!r}.")
  return found


def class_labels(class_names: Sequence[str], num_classes: int) -> list[Label]:
  """index → Label: WordNet-id names resolve to English names; 1000 unnamed classes use ILSVRC-2012."""
  from alexnet_jax.data import imagenet_classes
  table = imagenet_classes.load()
  if not class_names and num_classes == imagenet_classes.NUM_CLASSES:
    return [Label(i, n, w) for i, (w, n) in enumerate(zip(table.wnids, table.names))]
  out = []
  for i in range(num_classes):
    name = class_names[i] if i < len(class_names) else f"class_{i}"
    try:
      out.append(Label(i, table.names[table.index_of(name)], name))
    except KeyError:
      out.append(Label(i, name, ""))
  return out


def _dataset_info(config, num_classes: int | None):
  """The training dataset's info, or a stand-in (ImageNet names) when a 1000-class dataset is absent."""
  from alexnet_jax.data import input_pipeline
  try:
    return input_pipeline.get_info(config)
  except input_pipeline.DataError:
    if num_classes != 1000 and str(config.dataset) != "imagenet2012":
      raise
    from alexnet_jax.data import imagenet_classes
    names = imagenet_classes.load().wnids
    return input_pipeline.DatasetInfo(name=str(config.dataset), num_classes=1000,
                                      num_train=int(config.batch_size), num_eval=0, class_names=names)


def _load_images(paths: Sequence[str], preprocess) -> np.ndarray:
  import tensorflow as tf
  from alexnet_jax.data import augment
  views = []
  for p in paths:
    try:
      image = augment.decode_rgb(tf.io.read_file(p))
    except tf.errors.OpError as e:
      raise FileNotFoundError(f"Cannot read {p!r} as an image ({type(e).__name__}); pass JPEG/PNG/BMP/GIF files.") from None
    views.append(preprocess(image).numpy())
  return np.stack(views)


def predict_files(evaluator, paths: Sequence[str], protocol: str = "center") -> list[dict[str, Any]]:
  """Per file: top-k (index, probability) averaged over the protocol's views."""
  from alexnet_jax import evaluate
  preprocess = evaluate.make_preprocess(protocol, evaluator.config)
  batch_size = evaluate.images_per_batch(evaluator.config, protocol, evaluator.multiple)
  out = []
  for start in range(0, len(paths), batch_size):
    chunk = list(paths[start:start + batch_size])
    images = _load_images(chunk, preprocess)
    pad = batch_size - len(chunk)
    batch = {"image": np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)]),
             "label": np.zeros(batch_size, np.int32), "mask": (np.arange(batch_size) < len(chunk)).astype(np.float32)}
    res = evaluator.predict_batch(batch)
    for i, p in enumerate(chunk):
      out.append({"file": p, "top": [(int(c), float(q)) for c, q in zip(res["topk"][i], res["topk_prob"][i])]})
  return out


def format_predictions(preds: list[dict[str, Any]], labels: Sequence[Label]) -> str:
  lines = []
  for pred in preds:
    lines.append(pred["file"])
    for rank, (c, q) in enumerate(pred["top"], 1):
      lab = labels[c]
      wnid = f" {lab.wnid}" if lab.wnid else ""
      lines.append(f"  {rank}. {100 * q:6.2f}%  [{c:4d}]{wnid}  {lab.name}")
  return "\n".join(lines)


def to_json(preds: list[dict[str, Any]], labels: Sequence[Label]) -> list[dict[str, Any]]:
  return [{"file": p["file"], "top": [{"index": c, "wnid": labels[c].wnid, "name": labels[c].name, "prob": q}
                                      for c, q in p["top"]]} for p in preds]


def run(config, workdir: str, images: str, *, step: int | None = None, topk: int = 5,
        protocol: str = "center", json_path: str | None = None) -> list[dict[str, Any]]:
  """The predict command: restore a checkpoint, classify `images`, print (and optionally save JSON)."""
  from alexnet_jax import checkpoint
  from alexnet_jax import evaluate
  if topk < 1:
    raise ValueError(f"--topk={topk} must be at least 1.")
  paths = list_images(images)
  num_classes = None
  if os.path.isdir(checkpoint.checkpoint_dir(workdir)):
    mgr = evaluate.open_checkpoints(workdir)
    steps = mgr.all_steps()
    wanted = steps[-1] if steps and step is None else step
    if wanted in steps:
      num_classes = checkpoint.read_meta(mgr, wanted).get("num_classes")
    mgr.close()
  info = _dataset_info(config, num_classes)
  trainer, state, step = evaluate.restore_for_eval(config, workdir, step, info=info)
  evaluator = evaluate.Evaluator(trainer, state, k=topk)
  labels = class_labels(info.class_names, info.num_classes)
  preds = predict_files(evaluator, paths, protocol)
  print(f"Checkpoint step {step} of {workdir}, protocol {protocol}:")
  print(format_predictions(preds, labels))
  records = to_json(preds, labels)
  if json_path:
    with open(json_path, "w") as f:
      json.dump({"step": step, "protocol": protocol, "predictions": records}, f, indent=2)
    print(f"Wrote {json_path}")
  return records
