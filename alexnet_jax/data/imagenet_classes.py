"""ILSVRC-2012 class index → WordNet id → readable name, from a checked-in table.

The table `imagenet_classes.tsv` beside this file has one row per class in the standard
order (sorted WordNet ids, the order TFDS's `imagenet2012` labels and torchvision's
pretrained weights both use): `index<TAB>wnid<TAB>name`. It was built once from TFDS's
imagenet2012 label list (the wnids) and torchvision's category names, so predicting with
an ImageNet checkpoint needs neither torchvision nor a prepared ImageNet.
"""

from __future__ import annotations

import dataclasses
import functools
import os

NUM_CLASSES = 1000
TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.tsv")


@dataclasses.dataclass(frozen=True)
class ImageNetClasses:
  wnids: tuple[str, ...]   # index → WordNet id (e.g. 'n01440764')
  names: tuple[str, ...]   # index → readable name (e.g. 'tench')

  def index_of(self, wnid: str) -> int:
    """The class index of a WordNet id; a clear KeyError for an id outside ILSVRC-2012."""
    try:
      return _wnid_index(self.wnids)[wnid]
    except KeyError:
      raise KeyError(f"{wnid!r} is not one of the 1000 ILSVRC-2012 WordNet ids "
                     "(expected e.g. 'n01440764').") from None


@functools.lru_cache(maxsize=None)
def _wnid_index(wnids: tuple[str, ...]) -> dict[str, int]:
  return {w: i for i, w in enumerate(wnids)}


def parse_table(text: str) -> ImageNetClasses:
  """Parses the TSV text, checking that indices run 0..N-1 in order (a corrupt copy fails loudly)."""
  wnids, names = [], []
  for line_no, line in enumerate(text.splitlines(), 1):
    if not line.strip() or line.startswith("#"):
      continue
    parts = line.split("\t")
    if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) != len(wnids):
      raise ValueError(f"{TABLE}:{line_no}: expected '<index>\\t<wnid>\\t<name>' with index "
                       f"{len(wnids)}, got {line!r}. Restore the file from the repository.")
    wnids.append(parts[1])
    names.append(parts[2])
  return ImageNetClasses(tuple(wnids), tuple(names))


@functools.lru_cache(maxsize=1)
def load() -> ImageNetClasses:
  """The 1000 ILSVRC-2012 classes (read once per process)."""
  with open(TABLE, encoding="utf-8") as f:
    classes = parse_table(f.read())
  if len(classes.wnids) != NUM_CLASSES:
    raise ValueError(f"{TABLE} lists {len(classes.wnids)} classes, expected {NUM_CLASSES}. "
                     "Restore the file from the repository.")
  return classes
