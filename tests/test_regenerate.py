"""The regenerate command: the committed tables and quoted numbers match their records, a table
edited by hand fails the check, and the Figure 1 ratio says when the rate grid makes it a bound.
Fast: no JAX is imported."""

import io
import json
import os
import shutil
import sys

import pytest

from experiments import figure1, regenerate, results_docs, results_tables

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _copy_tree(dest):
  shutil.copytree(os.path.join(REPO, "experiments", "results"), dest / "experiments" / "results")
  for name in ("README.md", "BENCHMARKS.md"):
    shutil.copy(os.path.join(REPO, name), dest / name)
  return dest


def test_committed_tree_matches_its_records():
  out = io.StringIO()
  assert regenerate.run(REPO, check=True, out=out) == 0, out.getvalue()
  assert "match their records" in out.getvalue()


def test_a_table_edited_by_hand_fails_the_check_and_regenerating_restores_it(tmp_path):
  root = _copy_tree(tmp_path)
  seeds = root / "experiments" / "results" / "imagenette_alexnet" / "seeds.md"
  text = seeds.read_text()
  edited = text.replace("| did not train |", "| resolved |", 1)
  assert edited != text
  seeds.write_text(edited)
  readme = root / "README.md"
  readme.write_text(readme.read_text().replace("**75.95% top-1 centre**", "**76.10% top-1 centre**"))

  out = io.StringIO()
  assert regenerate.run(str(root), check=True, out=out) == 1
  report = out.getvalue()
  assert "a/experiments/results/imagenette_alexnet/seeds.md" in report and "-| lrn_off" in report
  assert "a/README.md" in report and "2 file(s) differ" in report
  assert seeds.read_text() == edited  # --check writes nothing

  assert regenerate.main(["--root", str(root)]) == 0
  assert seeds.read_text() == text
  assert regenerate.run(str(root), check=True, out=io.StringIO()) == 0


def test_text_outside_the_blocks_is_kept(tmp_path):
  root = _copy_tree(tmp_path)
  readme = root / "README.md"
  readme.write_text(readme.read_text() + "\nA line of our own.\n")
  assert regenerate.run(str(root), check=True, out=io.StringIO()) == 0
  assert readme.read_text().endswith("A line of our own.\n")


def test_missing_block_or_root_is_one_line_and_exit_2(tmp_path, capsys):
  root = _copy_tree(tmp_path)
  bench = root / "BENCHMARKS.md"
  bench.write_text(bench.read_text().replace("<!-- generated: bench-gpu-step -->\n", ""))
  assert regenerate.main(["--check", "--root", str(root)]) == 2
  assert regenerate.main(["--root", str(tmp_path / "nowhere")]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 2 and "bench-gpu-step" in err and "no experiments/results/" in err
  assert "Traceback" not in err


def test_a_benchmark_record_plugs_into_its_block(tmp_path, monkeypatch):
  root = _copy_tree(tmp_path)
  block = results_docs.bench_block("cpu_step")
  path = root / "experiments" / "results" / "benchmarks" / "cpu_step.json"
  path.unlink(missing_ok=True)  # the committed record, if any: the block without one first
  assert "Not yet measured with the records format" in block(str(root))
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({"rows": [1, 2]}))
  from experiments import bench_report
  monkeypatch.setattr(bench_report, "render_step", lambda record: f"| table of {len(record['rows'])} rows |")
  assert block(str(root)) == "| table of 2 rows |\n"
  assert regenerate.run(str(root), check=True, out=io.StringIO()) == 1
  regenerate.run(str(root), check=False, out=io.StringIO())
  assert "| table of 2 rows |" in (root / "BENCHMARKS.md").read_text()


def test_tables_name_the_machine_that_trained_and_members_that_did_not_train_get_no_verdict():
  seeds = (open(os.path.join(REPO, "experiments/results/imagenette_alexnet/seeds.md")).read())
  assert "NVIDIA H200" in seeds and "AMD EPYC" not in seeds
  for member in ("lrn_off", "paper_init"):
    row = results_tables.seed_row(REPO, "imagenette_alexnet", member)
    assert row["verdict"] == "did not train" and row["d_top1"] == "" and row["sign"] == ""
  assert results_tables.campaign_counts(REPO, "imagenette_alexnet") == (36, 10, 10, 16)


def _entry(reach_by_rate):
  return {lr: {"epoch_errors": [0.5] * (n or 30) if n is None else [0.5] * (n - 1) + [0.2]}
          for lr, n in reach_by_rate.items()}


@pytest.mark.parametrize("relu, tanh, bound", [
    ({"1": 5, "2": 3, "4": 6}, {"1": 9, "2": 7, "4": 8}, "exact"),
    ({"1": 5, "2": 3, "4": 6}, {"1": 9, "2": 8, "4": 7}, "upper"),      # tanh fastest at the top
    ({"1": 3, "2": 3, "4": 6}, {"1": 9, "2": 7, "4": 8}, "lower"),      # ReLU ties at the bottom
    ({"1": 3, "2": 4, "4": 6}, {"1": 9, "2": 8, "4": 7}, "undetermined"),
])
def test_figure1_ratio_is_a_bound_where_the_grid_does_not_bracket_the_rate(relu, tanh, bound):
  result = {"threshold": 0.25, "setups": {"s": {"rates": {"relu": _entry(relu), "tanh": _entry(tanh)}}}}
  speed = figure1.finish_grid(result)["setups"]["s"]["speedup"]
  assert speed["bound"] == bound
  assert ("edge" not in speed["text"]) and (("of its grid" in speed["text"]) == (bound != "exact"))


def test_the_committed_figure1_ratio_is_labelled_a_bound():
  data = json.load(open(os.path.join(REPO, "experiments/results/figure1_lr/figure1.json")))
  assert data["setups"]["2012"]["speedup"]["bound"] == "upper"
  assert "NVIDIA H200" in data["machine"]


def test_the_command_does_not_import_jax():
  import subprocess
  code = ("import os, sys; from experiments import regenerate; regenerate.run('.', True, open(os.devnull, 'w')); "
          "print('jax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_every_document_with_the_mark_points_to_the_rerun_list():
  docs = [os.path.join(REPO, "README.md"), os.path.join(REPO, "BENCHMARKS.md")]
  docs += [os.path.join(REPO, "docs", f) for f in os.listdir(os.path.join(REPO, "docs")) if f.endswith(".md")]
  for folder, _, files in os.walk(os.path.join(REPO, "experiments", "results")):
    docs += [os.path.join(folder, f) for f in files if f.endswith(".md") and f != "RERUN.md"]
  marked = [d for d in docs if results_docs.MARK in open(d, encoding="utf-8").read()]
  assert len(marked) >= 6
  for d in marked:
    assert "RERUN.md" in open(d, encoding="utf-8").read(), d


def test_a_study_imported_in_the_records_layout_is_regenerated_without_code(tmp_path):
  root = _copy_tree(tmp_path)
  runs = root / "experiments" / "results" / "new_study" / "runs"
  machine = {"device_kind": "NVIDIA H200", "device_count": 1, "cpu": "AMD EPYC 9654", "date": "2026-12-01T10:00:00"}
  for name, top1 in (("baseline-seed=0", 0.70), ("baseline-seed=1", 0.71), ("wide-seed=0", 0.74),
                     ("wide-seed=1", 0.76)):
    d = runs / name
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"done": True, "step": 300, "epoch": 3.0, "num_classes": 10,
                                                "eval": {"top1": top1, "top5": 0.9}, "train": {"loss": 0.5}}))
    (d / "metrics.jsonl").write_text(json.dumps({"step": 300, "epoch": 3.0, "eval/top1": top1}) + "\n")
    (d / "machine.json").write_text(json.dumps(machine))
  out = io.StringIO()
  assert regenerate.run(str(root), check=True, out=out) == 1
  assert "new_study/seeds.md" in out.getvalue()
  regenerate.run(str(root), check=False, out=io.StringIO())
  folder = root / "experiments" / "results" / "new_study"
  assert sorted(p.name for p in folder.iterdir()) == ["results.csv", "results.md", "runs", "seeds.csv", "seeds.md"]
  seeds = (folder / "seeds.md").read_text()
  assert "Machine: NVIDIA H200, AMD EPYC 9654. Date: 2026-12-01." in seeds and "| wide | 2 |" in seeds
  assert regenerate.run(str(root), check=True, out=io.StringIO()) == 0


def test_a_damaged_record_is_one_line_and_nothing_is_written(tmp_path, capsys):
  root = _copy_tree(tmp_path)
  record = root / "experiments" / "results" / "imagenette_alexnet" / "results.csv"
  record.write_text(record.read_text().replace(",75.95,", ",75.9x,", 1))
  readme_before = (root / "README.md").read_text()
  assert regenerate.main(["--root", str(root)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "cannot be read" in err and "Traceback" not in err
  assert (root / "README.md").read_text() == readme_before
