"""The mutation command's bookkeeping: scores from a record, the report, the module→tests map, bad input."""

from __future__ import annotations

import json
import os

import pytest

from experiments import mutation
from tests.conftest import REPO


def _record(status: dict[str, str]) -> dict:
  return {"module": "alexnet_jax/eval/scoring.py", "tests": ["tests/test_eval_scoring.py"], "tool": "mutmut 3.8.1",
          "date": "2026-12-04", "status": status, "complete": True}


def test_score_counts_timeouts_as_killed_and_leaves_out_equivalents_and_unchecked():
  record = _record({"m.a__mutmut_1": "killed", "m.a__mutmut_2": "timeout", "m.a__mutmut_3": "survived",
                    "m.a__mutmut_4": "survived", "m.a__mutmut_5": "no tests", "m.a__mutmut_6": "not checked"})
  s = mutation.score(record, {"m.a__mutmut_4": "same value"})
  assert (s["total"], s["checked"], s["killed"], s["timeout"]) == (6, 5, 2, 1)
  assert s["equivalent"] == ["m.a__mutmut_4"] and s["survivors"] == ["m.a__mutmut_3", "m.a__mutmut_5"]
  assert s["score"] == pytest.approx(2 / 4)
  assert mutation.score(_record({}))["score"] == 1.0


def test_report_lists_scores_equivalents_and_survivors(tmp_path):
  status = {"alexnet_jax.eval.scoring.x_f__mutmut_1": "killed", "alexnet_jax.eval.scoring.x_f__mutmut_2": "survived",
            "alexnet_jax.eval.scoring.x_f__mutmut_3": "survived"}
  (tmp_path / "scoring.json").write_text(json.dumps(_record(status)))
  text = mutation.render_mutation(str(tmp_path), {"alexnet_jax.eval.scoring.x_f__mutmut_3": "float('NAN') is nan"})
  row = next(line for line in text.splitlines() if line.startswith("| `alexnet_jax/eval/scoring.py`"))
  assert "| 3 | 3 | 1 | 1 | 1 | 50.0% | 2026-12-04 | mutmut 3.8.1 |" in row
  assert "- `eval.scoring.x_f__mutmut_3`: float('NAN') is nan" in text
  assert "- `eval.scoring.x_f__mutmut_2` (survived)" in text
  assert "| `alexnet_jax/data/store.py` | test_sharp_store.py | not run |" in text
  assert "python -m experiments.mutation" in text and "/work" not in text and "/tmp" not in text


def test_every_mapped_module_and_test_file_is_in_the_tree():
  for name, (module, tests) in mutation.MODULES.items():
    assert os.path.isfile(REPO / module), module
    present = mutation._tests(name)  # noqa: SLF001 - sharp test files not written yet are left out
    assert present and all(os.path.isfile(REPO / t.partition("::")[0]) for t in present), name


@pytest.mark.parametrize("argv,needle", [(["--modules=nosuch"], "unknown module nosuch"),
                                         (["--max_children=0"], "at least 1")])
def test_bad_arguments_are_one_line_and_exit_2(argv, needle, capsys):
  assert mutation.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1


def test_judged_equivalents_are_read_from_the_file_beside_each_record(tmp_path):
  status = {"alexnet_jax.eval.scoring.x_f__mutmut_1": "survived", "alexnet_jax.eval.scoring.x_f__mutmut_2": "survived"}
  (tmp_path / "scoring.json").write_text(json.dumps(_record(status)))
  (tmp_path / "scoring.equivalent.json").write_text(
      json.dumps({"alexnet_jax.eval.scoring.x_f__mutmut_2": "the same sum"}))
  (tmp_path / "nosuch.equivalent.json").write_text(json.dumps({"x": "not a mapped module"}))
  assert mutation.load_equivalent(str(tmp_path)) == {"alexnet_jax.eval.scoring.x_f__mutmut_2": "the same sum"}
  text = mutation.render_mutation(str(tmp_path))
  assert "- `eval.scoring.x_f__mutmut_2`: the same sum" in text and "- `eval.scoring.x_f__mutmut_1` (survived)" in text


def test_every_judged_equivalent_names_a_mutant_of_its_own_record():
  folder = REPO / mutation.RECORDS
  for name in mutation.MODULES:
    path = folder / (name + mutation.EQUIVALENT_SUFFIX)
    if path.exists():
      record = json.loads((folder / f"{name}.json").read_text())
      for mutant, why in json.loads(path.read_text()).items():
        assert mutant in record["status"] and why.strip(), (name, mutant)
