"""A run's record files (alexnet_jax/jsonl.py): metrics.jsonl rows and summary.json."""

import json

from alexnet_jax import jsonl


def test_read_skips_blank_and_torn_lines(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "loss": 2.5}\n\n{"step": 2, "loss": 2.0}\n{"step": 3, "lo')  # killed mid-write
  assert jsonl.read(str(path)) == [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.0}]
  assert jsonl.read(str(tmp_path / "missing.jsonl")) == []


def test_summary_is_written_whole_and_read_back(tmp_path):
  jsonl.write_summary(str(tmp_path), {"step": 7, "eval": {"top1": 0.5}})
  assert jsonl.read_summary(str(tmp_path)) == {"step": 7, "eval": {"top1": 0.5}}
  assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left
  jsonl.write_summary(str(tmp_path), {"step": 8})
  assert json.loads((tmp_path / "summary.json").read_text()) == {"step": 8}


def test_missing_or_damaged_summary_reads_as_none(tmp_path):
  assert jsonl.read_summary(str(tmp_path)) is None
  (tmp_path / "summary.json").write_text('{"step": ')
  assert jsonl.read_summary(str(tmp_path)) is None
