"""Image folders laid out as <root>/<split>/<class>/<image>, with bad-file screening.

Real folders contain surprises: zero-byte and truncated downloads, corrupt files, CMYK
and grayscale JPEGs, PNGs saved under a .JPEG name, stray README/.txt files. Readable
oddities are converted to RGB by the decoder (`augment.decode_rgb`); unreadable files are
found once per listing by a parallel tf.data decode pass, then skipped, counted and
named in the log. The result is cached in a small manifest keyed by the listing (names,
sizes, mtimes), next to the data when that folder is writable, otherwise in a user
cache directory, so a restart does not re-scan ImageNet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from typing import TYPE_CHECKING

from absl import logging

from alexnet_jax import atomic
from alexnet_jax import progress
from alexnet_jax.errors import UserError

if TYPE_CHECKING:
  import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_MANIFEST_VERSION = 1


class FolderError(UserError):
  """A problem with the folder's layout; input_pipeline re-raises it as DataError."""


@dataclasses.dataclass(frozen=True)
class Split:
  """The readable images of one split: parallel tuples of paths and label indices."""
  name: str                 # the folder name actually used (e.g. 'val' for 'validation')
  paths: tuple[str, ...]
  labels: tuple[int, ...]
  skipped: tuple[str, ...]  # unreadable files (relative to the split folder)


def resolve_split(root: str, split: str) -> str:
  """Maps a requested split to an existing sub-folder ('validation' falls back to 'val')."""
  if os.path.isdir(os.path.join(root, split)):
    return split
  aliases = {"validation": ("val", "valid"), "val": ("validation",), "test": ("val",)}
  for alt in aliases.get(split, ()):
    if os.path.isdir(os.path.join(root, alt)):
      return alt
  existing = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
  raise FolderError(
      f"Image folder {root!r} has no split folder {split!r}. Splits found: {existing or 'none'}. "
      f"Expected layout <root>/<split>/<class>/<image>; set config.train_split / config.eval_split "
      f"to one of the folders found.")


def class_names(root: str, split: str) -> tuple[str, ...]:
  """Sorted class folder names of a split (the label index is the position here)."""
  split_dir = os.path.join(root, split)
  names = tuple(sorted(d for d in os.listdir(split_dir)
                       if os.path.isdir(os.path.join(split_dir, d)) and not d.startswith(".")))
  if not names:
    raise FolderError(
        f"Split folder {split_dir!r} has no class folders; expected <root>/<split>/<class>/<image>.")
  return names


def _list_images(split_dir: str, classes: tuple[str, ...]) -> list[tuple[str, int]]:
  """(relative path, label) of every file with an image extension; non-images are ignored."""
  items = []
  for label, name in enumerate(classes):
    class_dir = os.path.join(split_dir, name)
    if not os.path.isdir(class_dir):
      continue  # a class absent from this (eval) split
    files = sorted(f for f in os.listdir(class_dir)
                   if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    if not files:
      raise FolderError(
          f"Class folder {class_dir!r} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)}). "
          "Remove the empty folder or add its images.")
    items.extend((os.path.join(name, f), label) for f in files)
  return items


def _listing_key(split_dir: str, rel_paths: list[str]) -> str:
  """A hash of names, sizes and mtimes: any change to the folder invalidates the manifest."""
  h = hashlib.sha256(os.path.abspath(split_dir).encode())
  for rel in rel_paths:
    st = os.stat(os.path.join(split_dir, rel))
    h.update(f"{rel}\0{st.st_size}\0{int(st.st_mtime_ns)}\n".encode())
  return h.hexdigest()[:20]


def _cache_dirs(split_dir: str) -> list[str]:
  """Where a manifest may live, in order of preference."""
  user_cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return [split_dir, os.path.join(user_cache, "alexnet_jax", "manifests"),
          os.path.join(tempfile.gettempdir(), "alexnet_jax_manifests")]


def _manifest_name(key: str) -> str:
  return f".alexnet_jax_manifest_{key}.json"


def _read_manifest(split_dir: str, key: str) -> list[str] | None:
  for d in _cache_dirs(split_dir):
    path = os.path.join(d, _manifest_name(key))
    try:
      with open(path) as f:
        data = json.load(f)
      if data.get("version") == _MANIFEST_VERSION and data.get("key") == key:
        return list(data["bad"])
    except (OSError, ValueError, KeyError):
      continue
  return None


def _write_manifest(split_dir: str, key: str, bad: list[str]) -> None:
  """Writes the manifest to the first writable place; never fails the run for a cache."""
  payload = json.dumps({"version": _MANIFEST_VERSION, "key": key, "folder": split_dir, "bad": bad})
  for d in _cache_dirs(split_dir):
    try:
      os.makedirs(d, exist_ok=True)
      atomic.write_text(os.path.join(d, _manifest_name(key)), payload)
      return
    except OSError:
      continue
  logging.warning("Could not write a bad-file manifest for %s; it will be re-scanned next time.",
                  split_dir)


def _check_decodable(bytes_: tf.Tensor) -> tf.Tensor:
  """Decodes (JPEGs at 1/8 scale: every byte is still parsed) so broken files raise."""
  import tensorflow as tf
  from alexnet_jax.data import augment

  def jpeg() -> tf.Tensor:
    return tf.shape(tf.io.decode_jpeg(bytes_, channels=3, ratio=8))[:2]

  def other() -> tf.Tensor:
    return tf.shape(augment.decode_rgb(bytes_))[:2]

  return tf.cond(tf.io.is_jpeg(bytes_), jpeg, other)


def find_unreadable(split_dir: str, rel_paths: list[str]) -> list[str]:
  """The files among `rel_paths` that do not decode, found by one parallel tf.data pass."""
  if not rel_paths:
    return []
  import tensorflow as tf  # only here: listing a folder needs no TensorFlow
  paths = [os.path.join(split_dir, p) for p in rel_paths]
  ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths)).enumerate()
  ds = ds.map(lambda i, p: (i, p, _check_decodable(tf.io.read_file(p))),
              num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.ignore_errors()  # a file that fails to decode drops out; the rest keep their order
  bar = progress.Progress(len(paths), f"Screening {split_dir}", unit="files")
  good = set()
  for i, p, _ in ds.as_numpy_iterator():
    good.add(p.decode())
    bar.update(int(i) + 1)
  bar.done = len(paths)
  bar.finish()
  return [rel for rel, full in zip(rel_paths, paths) if full not in good]


def load_split(root: str, split: str, classes: tuple[str, ...], skip_corrupt: bool = True) -> Split:
  """Lists a split, screens it for unreadable files (cached) and returns the readable ones."""
  name = resolve_split(root, split)
  split_dir = os.path.join(root, name)
  extra = sorted(set(class_names(root, name)) - set(classes))
  if extra:
    raise FolderError(
        f"Split {split_dir!r} has class folders not present in the train split: {extra[:5]}. "
        "Every class must have a folder under the train split.")
  items = _list_images(split_dir, classes)
  if not items:
    raise FolderError(f"Split folder {split_dir!r} contains no images.")
  rel_paths = [r for r, _ in items]
  key = _listing_key(split_dir, rel_paths)
  bad = _read_manifest(split_dir, key)
  if bad is None:
    logging.info("Checking %d images in %s for unreadable files (once per listing)...",
                 len(rel_paths), split_dir)
    bad = find_unreadable(split_dir, rel_paths)
    _write_manifest(split_dir, key, bad)
  if bad:
    if not skip_corrupt:
      raise FolderError(
          f"{len(bad)} unreadable image(s) in {split_dir!r}, e.g. {bad[:5]}. Fix or delete them, or "
          "set config.input.skip_corrupt=True to skip them.")
    logging.warning("Skipping %d unreadable image(s) in %s: %s", len(bad), split_dir,
                    ", ".join(bad[:50]) + (" ..." if len(bad) > 50 else ""))
  bad_set = set(bad)
  kept = [(os.path.join(split_dir, r), y) for r, y in items if r not in bad_set]
  if not kept:
    raise FolderError(f"Split folder {split_dir!r} has no readable images ({len(bad)} unreadable).")
  present = {y for _, y in kept}
  for label, cname in enumerate(classes):
    if os.path.isdir(os.path.join(split_dir, cname)) and label not in present:
      raise FolderError(f"Class folder {os.path.join(split_dir, cname)!r} has no readable images.")
  return Split(name=name, paths=tuple(p for p, _ in kept), labels=tuple(y for _, y in kept),
               skipped=tuple(bad))
