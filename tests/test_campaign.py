"""experiments/campaign.py: the records archive (layout, what it leaves out) and its import (what it refuses)."""

import gzip
import io
import json
import os
import tarfile

import pytest

from experiments import campaign


def _runs_root(tmp_path):
  root = tmp_path / "runs"
  run = root / "mysweep" / "base-seed=0"
  (run / "checkpoints" / "5").mkdir(parents=True)
  (run / "checkpoints" / "5" / "state").write_bytes(b"x" * 10)
  (run / "config.json").write_text(json.dumps({"dataset": os.path.join(campaign.REPO, ".data", "imagenette")}))
  (run / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "train/loss": 1.0 / (i + 1)}) + "\n"
                                             for i in range(40000)))  # > 1 MB: goes in gzipped
  (run / "summary.json").write_text(json.dumps({"done": True, "eval": {"top1": 0.5}}))
  (run / "eval_center.json").write_text("{}")
  (run / "events.out.tfevents.1").write_bytes(b"e")
  (run / "machine.json").write_text(json.dumps({"command": "python main.py", "wall_s": 12.5}))
  (root / "mysweep" / "no_record").mkdir()  # never started: no config.json, not bundled
  plan = {"members": [{"command": f"python {campaign.REPO}/main.py"}]}
  (root / "mysweep" / "sweep.json").write_text(json.dumps(plan))
  (tmp_path / "bench.json").write_text("{}")
  return root


def test_bundle_is_the_records_layout_and_imports_back(tmp_path):
  root = _runs_root(tmp_path)
  archive = str(tmp_path / "records.tar.gz")
  counts = campaign.bundle(str(root), archive, {"gpu": "NVIDIA H200", "date": "d"}, {"mysweep": "study"},
                           {"benchmarks/gpu_step.json": str(tmp_path / "bench.json")})
  base = "experiments/results/study/runs/"
  names = set(tarfile.open(archive).getnames())
  assert names == {base + "sweep.json", base + "base-seed=0/config.json", base + "base-seed=0/summary.json",
                   base + "base-seed=0/metrics.jsonl.gz", base + "base-seed=0/eval_center.json",
                   base + "base-seed=0/machine.json", "experiments/results/benchmarks/gpu_step.json"}
  assert counts == {"study": 6, "benchmarks": 1}
  dest = tmp_path / "results"
  files = campaign.import_records(archive, str(dest))
  assert len(files) == 7
  run = dest / "study" / "runs" / "base-seed=0"
  machine = json.loads((run / "machine.json").read_text())
  assert machine["gpu"] == "NVIDIA H200" and machine["wall_s"] == 12.5 and machine["command"] == "python main.py"
  assert gzip.decompress((run / "metrics.jsonl.gz").read_bytes()).count(b"\n") == 40000
  # No folder of this machine in the records: the repository's own path is written relative.
  for path in (run / "config.json", dest / "study" / "runs" / "sweep.json"):
    assert campaign.REPO not in path.read_text()
  assert json.loads((run / "config.json").read_text())["dataset"] == ".data/imagenette"
  assert campaign.main(["import", archive, f"--dest={dest}"]) == 0  # importing twice is harmless


def test_bundle_over_the_size_limit_is_refused(tmp_path):
  root = _runs_root(tmp_path)
  with pytest.raises(campaign.RecordsError, match="over the"):
    campaign.bundle(str(root), str(tmp_path / "r.tar.gz"), {}, limit=1000)
  assert not (tmp_path / "r.tar.gz").exists()


def _tar(path, members):
  with tarfile.open(path, "w:gz") as tar:
    for name, kind in members:
      info = tarfile.TarInfo(name)
      if kind == "link":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
      else:
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
  return str(path)


@pytest.mark.parametrize("bad", [
    "experiments/results/../../../evil.json", "/experiments/results/x.json", "../experiments/results/x.json",
    "README.md", "experiments/results_x/a.json", "link"])
def test_import_refuses_members_outside_results_and_writes_nothing(tmp_path, capsys, bad):
  good = ("experiments/results/study/runs/a/summary.json", "file")
  member = ("experiments/results/study/runs/a/link.json", "link") if bad == "link" else (bad, "file")
  archive = _tar(tmp_path / "bad.tar.gz", [good, member])
  dest = tmp_path / "dest" / "results"
  assert campaign.main(["import", archive, f"--dest={dest}"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "nothing was imported" in err and len(err.splitlines()) == 1
  assert not any(p.is_file() for p in (tmp_path / "dest").rglob("*"))
  assert not (tmp_path / "evil.json").exists()


def test_import_of_a_missing_or_broken_archive_is_one_line(tmp_path, capsys):
  assert campaign.main(["import", str(tmp_path / "nope.tar.gz")]) == 2
  assert "no such file" in capsys.readouterr().err
  (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
  assert campaign.main(["import", str(tmp_path / "junk.tar.gz"), f"--dest={tmp_path / 'd'}"]) == 2
  assert "not a readable records archive" in capsys.readouterr().err
  good = _tar(tmp_path / "g.tar.gz", [(f"experiments/results/s/runs/r{i}/summary.json", "file") for i in range(50)])
  data = open(good, "rb").read()
  (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
  assert campaign.main(["import", str(tmp_path / "cut.tar.gz"), f"--dest={tmp_path / 'd'}"]) == 2
  assert len(capsys.readouterr().err.strip().splitlines()) == 1
  assert not any(p.is_file() for p in (tmp_path / "d").rglob("*")) if (tmp_path / "d").exists() else True


def test_compile_seconds_are_read_from_a_compile_log(tmp_path):
  log = tmp_path / "run.log"
  log.write_text("W dispatch.py:236] Finished XLA compilation of jit(train_step) in 51.3 sec\n"
                 "W dispatch.py:236] Finished XLA compilation of jit(add) in 0.09 sec\n"
                 "W dispatch.py:236] Finished XLA compilation of jit(eval_step) in 12.0 sec\n")
  assert campaign.compile_seconds(str(log)) == {"train_step": 51.3, "eval_step": 12.0}
  assert campaign.compile_seconds(str(tmp_path / "none.log")) == {}


def test_compile_cache_record_renders_cold_and_warm_rows():
  record = {"machine": {"gpu": "NVIDIA H200", "driver": "580", "cores": 16, "date": "2026-12-05 10:00 UTC",
                        "versions": {"jax": "0.11.2"}},
            "programs": {"imagenette_leaderboard": {"epochs=5": {
                "cold": {"first_step_s": 80.0, "first_eval_s": 101.5,
                         "compile_s": {"train_step": 55.0, "eval_step": 9.0}},
                "warm": {"first_step_s": 14.0, "compile_s": {"train_step": 1.2}}}}}}
  text = campaign.render_compile_cache(record)
  assert "| imagenette_leaderboard | epochs=5 | cold | 80.0 | 101.5 | train_step 55.0, eval_step 9.0 |" in text
  assert "| warm | 14.0 | not reached | train_step 1.2 |" in text and "NVIDIA H200 (driver 580)" in text


def test_bundle_takes_runs_that_belong_to_no_sweep(tmp_path):
  root = tmp_path / "quick"
  (root / "alexnet-smoke").mkdir(parents=True)
  (root / "alexnet-smoke" / "config.json").write_text("{}")
  (root / "alexnet-smoke" / "summary.json").write_text('{"done": true}')
  (root / "scratch").mkdir()  # neither a sweep nor a run
  assert campaign.main(["bundle", str(root), f"--out={tmp_path / 'q.tar.gz'}", "--study=.=quick_mode"]) == 0
  names = set(tarfile.open(tmp_path / "q.tar.gz").getnames())
  assert names == {f"experiments/results/quick_mode/runs/alexnet-smoke/{n}"
                   for n in ("config.json", "summary.json", "machine.json")}
  assert campaign.main(["bundle", str(tmp_path / "nope"), f"--out={tmp_path / 'n.tar.gz'}"]) == 2
