"""The one atomic write (alexnet_jax/atomic.py): a reader sees the old file or the new one, never half."""

import json

import pytest

from alexnet_jax import atomic


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "summary.json"
  atomic.write_json(str(path), {"top1": 0.5}, indent=2)
  atomic.write_text(str(path), json.dumps({"top1": 0.6}))
  assert json.loads(path.read_text()) == {"top1": 0.6}
  assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_an_error_while_writing_keeps_the_previous_file(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text("old\n")
  with pytest.raises(RuntimeError):
    with atomic.write(str(path)) as f:
      f.write("half a li")
      raise RuntimeError("the disk is full")
  assert path.read_text() == "old\n"
  assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
