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

from alexnet_jax.data.folder import IMAGE_EXTENSIONS
from alexnet_jax.errors import UserError


class ImagesError(UserError, FileNotFoundError):
  """--images names nothing that can be classified (no such path, no image files, none readable)."""


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
    raise ImagesError(f"--images={path!r} is neither an image file nor a folder.")
  found = sorted(os.path.join(root, f) for root, _, files in os.walk(path, followlinks=True) for f in files
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  if not found:
    raise ImagesError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {path!r}.")
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


def _load_images(paths: Sequence[str], preprocess) -> tuple[list[str], list[np.ndarray], list[str]]:
  """(readable paths, their views, unreadable paths): a file that does not decode is skipped."""
  import tensorflow as tf
  from alexnet_jax.data import augment
  read, views, unreadable = [], [], []
  for p in paths:
    try:
      views.append(preprocess(augment.decode_rgb(tf.io.read_file(p))).numpy())
      read.append(p)
    except tf.errors.OpError:
      unreadable.append(p)
  return read, views, unreadable


def predict_files(evaluator, paths: Sequence[str], protocol: str = "center"
                  ) -> tuple[list[dict[str, Any]], list[str]]:
  """Per readable file: top-k (index, probability) averaged over the protocol's views; and the
  files that could not be read as images (skipped)."""
  from alexnet_jax.eval import views
  preprocess = views.make_preprocess(protocol, evaluator.config)
  batch_size = views.images_per_batch(evaluator.config, protocol, evaluator.multiple)
  out: list[dict[str, Any]] = []
  skipped: list[str] = []
  pending: list[str] = list(paths)
  while pending:
    chunk, loaded = [], []
    while pending and len(chunk) < batch_size:
      read, got, bad = _load_images(pending[:batch_size - len(chunk)], preprocess)
      del pending[:batch_size - len(chunk)]
      chunk += read
      loaded += got
      skipped += bad
    if not chunk:
      break
    images = np.stack(loaded)
    pad = batch_size - len(chunk)
    batch = {"image": np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)]),
             "label": np.zeros(batch_size, np.int32), "mask": (np.arange(batch_size) < len(chunk)).astype(np.float32)}
    res = evaluator.predict_batch(batch)
    for i, p in enumerate(chunk):
      out.append({"file": p, "top": [(int(c), float(q)) for c, q in zip(res["topk"][i], res["topk_prob"][i])]})
  return out, skipped


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
  from alexnet_jax import runtime
  from alexnet_jax.eval import run as eval_run
  if topk < 1:
    raise ValueError(f"--topk={topk} must be at least 1.")
  paths = list_images(images)
  num_classes = None
  if os.path.isdir(checkpoint.checkpoint_dir(workdir)):
    mgr = checkpoint.open_read_only(workdir)
    steps = mgr.all_steps()
    wanted = steps[-1] if steps and step is None else step
    if wanted in steps:
      num_classes = checkpoint.read_meta(mgr, wanted).get("num_classes")
    mgr.close()
  info = _dataset_info(config, num_classes)
  rt, state, step = runtime.restore_for_inference(config, workdir, step, info=info)
  evaluator = eval_run.Evaluator(rt, state, k=topk)
  labels = class_labels(info.class_names, info.num_classes)
  preds, skipped = predict_files(evaluator, paths, protocol)
  if not preds:
    raise ImagesError(f"None of the {len(paths)} file(s) under {images!r} could be read as an image "
                      f"({', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}); pass JPEG/PNG/BMP/GIF files.")
  print(f"Checkpoint step {step} of {workdir}, protocol {protocol}:")
  print(format_predictions(preds, labels))
  if skipped:
    print(f"Skipped {len(skipped)} unreadable file(s) of {len(paths)}:")
    print("\n".join(f"  {p}" for p in skipped))
  records = to_json(preds, labels)
  if json_path:
    with open(json_path, "w") as f:
      json.dump({"step": step, "protocol": protocol, "predictions": records, "skipped": skipped}, f, indent=2)
    print(f"Wrote {json_path}")
  return records
