"""ILSVRC-2012 through TFDS's `imagenet2012` builder, prepared from the manual download.

ImageNet cannot be downloaded automatically (it needs an image-net.org account), so
the first run must fail fast with instructions when the two tar files are missing,
rather than hang or print TFDS's generic message after a long start-up.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds
from absl import logging

from alexnet_jax.errors import UserError

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"


class MissingImageNet(UserError):
  """The manual-download tars are absent; input_pipeline turns it into a DataError."""


def manual_dir(builder: tfds.core.DatasetBuilder) -> str:
  """<data_dir>/downloads/manual, where TFDS looks for manually downloaded files."""
  return os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")


def missing_message(folder: str, missing: list[str]) -> str:
  return (
      f"ImageNet (imagenet2012) is not prepared and {', '.join(missing)} "
      f"{'is' if len(missing) == 1 else 'are'} missing from {folder}/ .\n"
      f"  1. Get {TRAIN_TAR} (~138 GB) and {VAL_TAR} (~6.3 GB) from "
      "https://image-net.org/download-images (free account, non-commercial terms).\n"
      f"  2. Place both files in {folder}/ (or point config.data_dir / --config.data_dir at the "
      "TFDS folder whose downloads/manual/ holds them); the first run then prepares the dataset "
      "(hours, once).\n"
      "To try the code without ImageNet, use the quick offline config instead:\n"
      "  python main.py --config=configs/alexnet.py:smoke")


def ensure_prepared(builder: tfds.core.DatasetBuilder) -> None:
  """Prepares imagenet2012 from the manual tars, or raises MissingImageNet within seconds."""
  if builder.is_prepared():
    return
  folder = manual_dir(builder)
  missing = [t for t in (TRAIN_TAR, VAL_TAR) if not os.path.isfile(os.path.join(folder, t))]
  if missing:
    raise MissingImageNet(missing_message(folder, missing))
  logging.info("Preparing imagenet2012 from %s into %s. This reads ~145 GB of tars and takes "
               "hours; it happens only once.", folder, builder.data_dir_root)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=folder, try_download_gcs=False))
