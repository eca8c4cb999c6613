"""The embedded offline dataset: procedurally rendered shapes, as a real TFDS builder.

Why it exists: the quick config (`:smoke`) and CI must train something meaningful on a
machine with no internet and no ImageNet. Instead of shipping image files, the images
are rendered from a seed (numpy + PIL), JPEG-encoded (so the decode path is the same
as for photos) and written by TFDS like any other dataset, the first time it is used.

Ten classes of shapes and textures, each drawn with random position, size, rotation,
colours, a gradient background, clutter strokes and pixel noise. A small convnet gets
well above chance within a few epochs, but it is not separable by colour or position.

Different split sizes are different `BuilderConfig`s (named by the sizes), so a dataset
prepared with one size is never silently reused for another.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw

NAME = "alexnet_jax_shapes"
IMAGE_SIZE = 80
CLASS_NAMES = ("circle", "square", "triangle", "star", "cross", "ring", "hstripes", "vstripes",
               "checkerboard", "ellipse")
# Mixed into every example's seed: a fixed constant so the data never depends on the run seed.
_DATA_SEED = 20120903
_SPLIT_IDS = {"train": 1, "validation": 2}


# ----------------------------------------------------------------------------- rendering


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
  return tuple(int(v) for v in rng.integers(0, 256, size=3))


def _far_colour(rng: np.random.Generator, ref: np.ndarray) -> tuple[int, int, int]:
  """A colour clearly different from `ref`, so the object never vanishes into the background."""
  for _ in range(20):
    c = rng.integers(0, 256, size=3)
    if np.abs(c - ref).sum() > 150:
      break
  return tuple(int(v) for v in c)


def _rotate(points: np.ndarray, angle: float, centre: tuple[float, float]) -> list[tuple[float, float]]:
  c, s = math.cos(angle), math.sin(angle)
  rot = points @ np.array([[c, s], [-s, c]])
  return [(float(x + centre[0]), float(y + centre[1])) for x, y in rot]


def _star(r: float, points: int = 5) -> np.ndarray:
  angles = np.arange(2 * points) * math.pi / points
  radii = np.where(np.arange(2 * points) % 2 == 0, r, 0.45 * r)
  return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _pattern_patch(kind: str, side: int, period: int, c1, c2) -> Image.Image:
  """A square texture patch (stripes or checkerboard)."""
  yy, xx = np.mgrid[0:side, 0:side]
  if kind == "hstripes":
    on = (yy // period) % 2 == 0
  elif kind == "vstripes":
    on = (xx // period) % 2 == 0
  else:
    on = ((yy // period) + (xx // period)) % 2 == 0
  arr = np.where(on[..., None], np.array(c1, np.uint8), np.array(c2, np.uint8)).astype(np.uint8)
  return Image.fromarray(arr)


def render(rng: np.random.Generator, label: int, size: int = IMAGE_SIZE) -> np.ndarray:
  """Renders one uint8 [size, size, 3] image of class `label` (an index into CLASS_NAMES)."""
  kind = CLASS_NAMES[label]
  # Background: a linear gradient between two random colours.
  c0, c1 = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
  t = np.linspace(0.0, 1.0, size, dtype=np.float32)
  grad = t[:, None] if rng.random() < 0.5 else t[None, :]
  bg = (c0 * (1 - grad[..., None]) + c1 * grad[..., None]).astype(np.uint8)
  bg = np.broadcast_to(bg, (size, size, 3)).copy()
  img = Image.fromarray(bg)
  draw = ImageDraw.Draw(img)
  mean_bg = (c0 + c1) / 2

  # Clutter: a few thin random strokes.
  for _ in range(int(rng.integers(1, 5))):
    xy = [tuple(float(v) for v in rng.uniform(0, size, 2)) for _ in range(2)]
    draw.line(xy, fill=_colour(rng), width=int(rng.integers(1, 3)))

  r = float(rng.uniform(0.18, 0.34)) * size
  cx, cy = (float(v) for v in rng.uniform(r + 2, size - r - 2, 2))
  angle = float(rng.uniform(0, 2 * math.pi))
  fg = _far_colour(rng, mean_bg)

  if kind == "circle":
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
  elif kind == "ring":
    w = max(2.0, r * float(rng.uniform(0.25, 0.4)))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=int(w))
  elif kind == "ellipse":
    th = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    pts = np.stack([r * np.cos(th), r * float(rng.uniform(0.35, 0.6)) * np.sin(th)], axis=1)
    draw.polygon(_rotate(pts, angle, (cx, cy)), fill=fg)
  elif kind == "square":
    pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * r * 0.8
    draw.polygon(_rotate(pts, angle, (cx, cy)), fill=fg)
  elif kind == "triangle":
    th = np.array([0, 2 * math.pi / 3, 4 * math.pi / 3])
    pts = np.stack([r * np.cos(th), r * np.sin(th)], axis=1)
    draw.polygon(_rotate(pts, angle, (cx, cy)), fill=fg)
  elif kind == "star":
    draw.polygon(_rotate(_star(r), angle, (cx, cy)), fill=fg)
  elif kind == "cross":
    a, b = r, r * 0.3
    pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a],
                    [-b, b], [-a, b], [-a, -b], [-b, -b]])
    draw.polygon(_rotate(pts, angle, (cx, cy)), fill=fg)
  else:  # textures: a patch of stripes / checks, slightly rotated, pasted through a mask
    side = int(2 * r)
    period = int(rng.integers(3, 7))
    patch = _pattern_patch(kind, side, period, fg, _far_colour(rng, np.array(fg, np.float64)))
    tilt = float(rng.uniform(-20, 20))
    mask = Image.new("L", (side, side), 255)
    patch = patch.rotate(tilt, resample=Image.NEAREST, expand=True)
    mask = mask.rotate(tilt, resample=Image.NEAREST, expand=True)
    img.paste(patch, (int(cx - patch.width / 2), int(cy - patch.height / 2)), mask)

  arr = np.asarray(img, dtype=np.int16)
  noise = rng.normal(0.0, float(rng.uniform(4, 14)), size=arr.shape)
  return np.clip(arr + noise, 0, 255).astype(np.uint8)


def example(split: str, index: int) -> tuple[bytes, int]:
  """The JPEG bytes and label of example `index` of `split`; a pure function of both."""
  label = index % len(CLASS_NAMES)
  rng = np.random.default_rng([_DATA_SEED, _SPLIT_IDS[split], index])
  buf = io.BytesIO()
  Image.fromarray(render(rng, label)).save(buf, format="JPEG", quality=90)
  return buf.getvalue(), label


# ----------------------------------------------------------------------------- TFDS builder


@dataclasses.dataclass(eq=False)
class ShapesConfig(tfds.core.BuilderConfig):
  """Split sizes; the config name carries them so each size gets its own prepared folder."""
  train_size: int = 6000
  eval_size: int = 1000


def config_for(train_size: int, eval_size: int) -> ShapesConfig:
  """The builder config for these split sizes (validated: sizes must be positive)."""
  if train_size <= 0 or eval_size <= 0:
    raise ValueError(
        f"embedded_train_size={train_size} and embedded_eval_size={eval_size} must both be > 0.")
  return ShapesConfig(name=f"train{train_size}_eval{eval_size}", train_size=int(train_size),
                      eval_size=int(eval_size),
                      description=f"{train_size} train / {eval_size} validation images.")


class AlexnetJaxShapes(tfds.core.GeneratorBasedBuilder):
  """Rendered shapes and textures, 10 classes, 80×80 JPEG, train and validation splits."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [config_for(6000, 1000)]

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(names=list(CLASS_NAMES)),
        }),
        supervised_keys=("image", "label"),
        description=__doc__.splitlines()[0],
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is rendered locally
    return {
        "train": self._generate_examples("train", self.builder_config.train_size),
        "validation": self._generate_examples("validation", self.builder_config.eval_size),
    }

  def _generate_examples(self, split: str, size: int):
    for i in range(size):
      image, label = example(split, i)
      yield i, {"image": image, "label": label}


def builder(train_size: int, eval_size: int, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """The builder for these sizes, prepared (rendered and written) on first use."""
  config = config_for(train_size, eval_size)
  # A predefined config must be passed by name (TFDS rejects an equal-named copy).
  if config.name in AlexnetJaxShapes.builder_configs:
    config = config.name
  b = AlexnetJaxShapes(config=config, data_dir=data_dir or None)
  if not b.is_prepared():
    b.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return b
