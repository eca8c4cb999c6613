"""Where and how a prepared store is laid out: its path, folder names, manifest fields and errors.

Shared by the writer (`prepare.py`, `prepare_folder.py`) and the reader (`store.py`), so that
neither imports the other for them. Standard library only.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zlib
from typing import Any

from alexnet_jax.errors import UserError

FORMAT_VERSION = 1
RESIZE_METHOD = "short side to S (bilinear, antialiased), central S×S square, rounded to uint8"
MANIFEST = "manifest.json"
INCOMPLETE = ".incomplete"


class StoreError(UserError):
  """A prepared store that cannot be used (missing, damaged, or made for another config)."""


class StoreMismatchError(StoreError):
  """The store was made for another config; the message names each field that differs."""


class StoreCorruptError(StoreError):
  """A shard is truncated or its checksum does not match the manifest; the message names it."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Sizes and class names of the configured dataset, from a store or the streaming path."""
  name: str
  num_classes: int
  num_train: int
  num_eval: int
  class_names: tuple[str, ...]


# ----------------------------------------------------------------------------- naming


def default_root() -> str:
  """$ALEXNET_JAX_DATA, else ~/alexnet_jax_data (shared by every run, like TFDS's data_dir)."""
  return os.environ.get("ALEXNET_JAX_DATA") or os.path.join(os.path.expanduser("~"), "alexnet_jax_data")


def stored_size(config) -> int:
  """S: config.input.store_size, or input.resize_size when it is 0."""
  size = int(config.input.get("store_size", 0)) or int(config.input.resize_size)
  if size < int(config.input.image_size):
    raise StoreError(f"config.input.store_size={size} is smaller than config.input.image_size="
                     f"{config.input.image_size}; store at least the crop size.")
  return size


def source_fields(config) -> dict[str, Any]:
  """What the store must have been made from: the manifest's 'source' and size fields."""
  fields = {"dataset": _dataset_id(config.dataset), "train_split": config.train_split,
            "eval_split": config.eval_split}
  if config.dataset == "embedded":
    fields["embedded_train_size"] = int(config.embedded_train_size)
    fields["embedded_eval_size"] = int(config.embedded_eval_size)
  return fields


def _dataset_id(dataset: str) -> str:
  return os.path.abspath(dataset) if os.path.isdir(dataset) else dataset


def store_path(config) -> str:
  """<store_dir or default root>/<dataset>[-<sizes>]-<S>px."""
  root = config.input.get("store_dir", "") or default_root()
  src = source_fields(config)
  name = os.path.basename(os.path.normpath(src["dataset"])) or "data"
  if "embedded_train_size" in src:
    name += f"-{src['embedded_train_size']}-{src['embedded_eval_size']}"
  if os.path.isdir(config.dataset):
    name += "-" + format(zlib.crc32(src["dataset"].encode()), "08x")
  return os.path.join(os.path.expanduser(root), f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{stored_size(config)}px")


def split_dir(split: str) -> str:
  """A folder name for a split (TFDS split strings may hold brackets and colons)."""
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", split)


def file_crc32(path: str, chunk: int = 1 << 24) -> int:
  crc = 0
  with open(path, "rb") as f:
    while block := f.read(chunk):
      crc = zlib.crc32(block, crc)
  return crc
