"""The ILSVRC-2012 class table (alexnet_jax/data/imagenet_classes.py): order, names, and the real sample folders."""

import os
import tarfile

import pytest

from alexnet_jax.data import imagenet_classes


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
