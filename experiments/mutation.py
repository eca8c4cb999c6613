"""Mutation testing of the core modules, one module at a time, with mutmut 3 (on demand, not in CI).

  pip install -r requirements-dev.txt
  nice -n 15 python -m experiments.mutation                      # every module in MODULES, one at a time
  nice -n 15 python -m experiments.mutation --modules=scoring,views
  python -m experiments.mutation --report                        # docs/MUTATION.md from the records only

Each module runs in its own copy of the tree (.mutation/<module>/, ignored by git): the copy's
setup.cfg is the repository's [mutmut] section plus `only_mutate` (the module) and the test files
that cover it (MODULES). mutmut runs those tests once to learn which test reaches which function,
then runs, for each mutant, only the tests that reach the mutated function. The raw result of a
module (every mutant's status) is written to experiments/results/mutation/<module>.json;
docs/MUTATION.md is rendered from those records and the judged-equivalent mutants beside them
(<module>.equivalent.json).

Score: killed (a test failed, or the mutant hung and timed out) over the mutants that are not
judged equivalent. A mutant no listed test reaches counts as surviving.
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDS = os.path.join("experiments", "results", "mutation")
REPORT = os.path.join("docs", "MUTATION.md")
WORK = ".mutation"
COPIED = ("alexnet_jax", "experiments", "tests", "configs", "main.py", "pytest.ini", "pyproject.toml")

# name → (module, test files that cover it). Files that do not exist (yet) are left out.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "scoring": ("alexnet_jax/eval/scoring.py", ("tests/test_eval_scoring.py", "tests/test_sharp_scoring.py")),
    "views": ("alexnet_jax/eval/views.py", ("tests/test_eval_views.py", "tests/test_sharp_views.py")),
    # test_configs.py builds every family's config (hundreds of cases) for each mutant of a rule;
    # test_sharp_validate.py checks every rule, message and cross-field check directly.
    "validate": ("alexnet_jax/configs/validate.py", ("tests/test_sharp_validate.py",)),
    # test_store.py prepares its store with TensorFlow for each mutant, and trains in child processes
    # (out of mutmut's sight); test_sharp_store.py writes a small store from arrays and checks the same.
    "store": ("alexnet_jax/data/store.py", ("tests/test_sharp_store.py",)),
    "optim": ("alexnet_jax/optim.py", ("tests/test_optim.py", "tests/test_sharp_optim.py")),
    # test_alexnet_model.py compiles full-size nets for each mutant; the sharp files check the same
    # layers and wiring on maps of a few pixels.
    "layers": ("alexnet_jax/models/layers.py", ("tests/test_sharp_layers.py",)),
    "alexnet": ("alexnet_jax/models/alexnet.py", ("tests/test_sharp_alexnet.py",)),
    # test_device_augment.py checks distributions over thousands of draws (tens of seconds a mutant);
    # test_sharp_device_augment.py checks the same functions exactly on tiny images.
    "device_augment": ("alexnet_jax/data/device_augment.py", ("tests/test_sharp_device_augment.py",)),
    "checkpoint": ("alexnet_jax/checkpoint.py", ("tests/test_checkpoint.py", "tests/test_sharp_checkpoint.py")),
    "stats": ("experiments/stats.py", ("tests/test_stats.py", "tests/test_sharp_stats.py")),
    # test_aggregate.py draws every plot and reruns the seed statistics for each mutant (seconds each);
    # test_sharp_aggregate.py checks the same tables exactly, with the plot functions recorded, not drawn.
    "aggregate": ("experiments/aggregate.py", ("tests/test_sharp_aggregate.py",)),
}

# Surviving mutants judged equivalent (no input can tell them from the original), one file a module
# beside its raw record: <module>.equivalent.json, mutant name → why.
EQUIVALENT_SUFFIX = ".equivalent.json"


def load_equivalent(folder: str = os.path.join(REPO, RECORDS)) -> dict[str, str]:
  """Every module's judged-equivalent mutants: name → the one line on why."""
  judged: dict[str, str] = {}
  for name in MODULES:
    path = os.path.join(folder, name + EQUIVALENT_SUFFIX)
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        judged.update(json.load(f))
  return judged


KILLED = {1, 3}  # a test failed (3: pytest's internal error, also a failure the mutant caused)
TIMEOUT = {36, 24, -24, 152, 255}
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def _status(code) -> str:
  if code in KILLED:
    return "killed"
  if code in TIMEOUT:
    return "timeout"
  return STATUS.get(code, "suspicious")


def _tests(name: str) -> list[str]:
  return [t for t in MODULES[name][1] if os.path.exists(os.path.join(REPO, t.partition("::")[0]))]


def _copy_tree(dest: str, fresh: bool) -> None:
  """The working tree's files (tracked and new, not ignored) that the tests need, copied over the
  previous copy (whose mutants/ folder keeps mutmut's results: only what changed runs again)."""
  if fresh and os.path.exists(dest):
    shutil.rmtree(dest)
  listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *COPIED], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.split("\n")
  for rel in filter(None, listed):
    src = os.path.join(REPO, rel)
    if os.path.isfile(src):
      os.makedirs(os.path.dirname(os.path.join(dest, rel)) or dest, exist_ok=True)
      shutil.copy2(src, os.path.join(dest, rel))


def _write_setup_cfg(dest: str, name: str, tests: list[str]) -> None:
  parser = configparser.ConfigParser()
  parser.read(os.path.join(REPO, "setup.cfg"))
  section = parser["mutmut"]
  section["only_mutate"] = MODULES[name][0]
  section["pytest_add_cli_args_test_selection"] = "\n" + "\n".join(tests)
  with open(os.path.join(dest, "setup.cfg"), "w") as f:
    parser.write(f)


def _tool_version() -> str:
  from importlib import metadata
  return metadata.version("mutmut")


def _meta_codes(work: str, module: str) -> dict:
  meta = os.path.join(work, "mutants", module + ".meta")
  if not os.path.exists(meta):
    return {}
  with open(meta) as f:
    return json.load(f)["exit_code_by_key"]


def _source_sha256(module: str) -> str:
  import hashlib
  with open(os.path.join(REPO, module), "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def _previous(name: str) -> dict:
  """The module's committed record, which a recheck starts from."""
  path = os.path.join(REPO, RECORDS, f"{name}.json")
  if not os.path.exists(path):
    raise RuntimeError(f"--recheck needs a record of an earlier run of {name}: run it in full first")
  with open(path) as f:
    previous = json.load(f)
  if not set(previous["tests"]) <= set(_tests(name)):
    raise RuntimeError(f"--recheck of {name}: a test file of the earlier run is no longer mapped: run it in full")
  if previous.get("source_sha256", _source_sha256(MODULES[name][0])) != _source_sha256(MODULES[name][0]):
    raise RuntimeError(f"--recheck of {name}: the module changed since its record: run it in full")
  return previous


def run_module(name: str, max_children: int, fresh: bool = False, recheck: bool = False) -> dict:
  """Runs mutmut on one module in its own copy; returns (and writes) the module's raw record.

  recheck: starts from the module's committed record and runs again only its surviving mutants
  (judged equivalents left out), after tests were added; every other verdict stands (a mutant that
  some test killed stays killed when tests are only added). The module itself must be unchanged:
  the same mutants, by name, as in the record.
  """
  work = os.path.join(REPO, WORK, name)
  module = MODULES[name][0]
  tests = _tests(name)  # the files this run uses (a test file added while it runs is not in it)
  previous = _previous(name) if recheck else None
  _copy_tree(work, fresh or recheck)
  _write_setup_cfg(work, name, tests)
  command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
  if previous is not None:
    judged = load_equivalent()
    survivors = sorted(k for k, v in previous["status"].items() if v not in ("killed", "timeout") and k not in judged)
    if not survivors:
      return previous
    command += survivors
  started = datetime.datetime.now(datetime.timezone.utc)
  with open(os.path.join(work, "mutmut.log"), "w") as log:
    proc = subprocess.run(command, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                          env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=""))
  elapsed = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
  codes = _meta_codes(work, module)
  if not codes:
    tail = open(os.path.join(work, "mutmut.log"), errors="replace").read()[-3000:]
    raise RuntimeError(f"mutmut failed on {module} (exit {proc.returncode}):\n{tail}")
  status = {k: _status(v) for k, v in sorted(codes.items())}
  if previous is not None:
    if set(status) != set(previous["status"]):
      raise RuntimeError(f"--recheck of {name}: the mutants differ from the record's: run it in full")
    status = {k: (status[k] if k in survivors else v) for k, v in previous["status"].items()}
  record = {
      "module": module, "tests": tests, "tool": f"mutmut {_tool_version()}", "source_sha256": _source_sha256(module),
      "date": started.strftime("%Y-%m-%d"), "wall_s": round(elapsed) + (previous or {}).get("wall_s", 0),
      "command": f"python -m experiments.mutation --modules={name}" + (" --recheck" if recheck else ""),
      "machine": {"host": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
      "status": status,
      "complete": proc.returncode == 0 and "not checked" not in status.values(),
  }
  if previous is not None:
    record["rechecked"] = len(survivors)
  os.makedirs(os.path.join(REPO, RECORDS), exist_ok=True)
  with open(os.path.join(REPO, RECORDS, f"{name}.json"), "w") as f:
    json.dump(record, f, indent=1, sort_keys=True)
    f.write("\n")
  return record


def score(record: dict, equivalent: dict[str, str] | None = None) -> dict:
  """Counts of one module's record: killed (timeouts included), equivalent, survivors, score."""
  equivalent = load_equivalent() if equivalent is None else equivalent
  status = {k: v for k, v in record["status"].items() if v != "not checked"}
  caught = ("killed", "timeout")
  eq = sorted(k for k, v in status.items() if v not in caught and k in equivalent)
  killed = sum(v in caught for v in status.values())
  timeouts = sum(v == "timeout" for v in status.values())
  survivors = sorted(k for k, v in status.items() if v not in caught and k not in equivalent)
  counted = len(status) - len(eq)
  return {"total": len(record["status"]), "checked": len(status), "killed": killed, "timeout": timeouts,
          "equivalent": eq, "survivors": survivors, "score": killed / counted if counted else 1.0}


def _test_files(tests) -> str:
  """test_a.py, test_b.py (3 tests): a file, or some of its tests (path::name)."""
  counts: dict[str, int] = {}
  for t in tests:
    path, _, test = t.partition("::")
    counts[os.path.basename(path)] = counts.get(os.path.basename(path), 0) + (1 if test else 0)
  return ", ".join(f"{f} ({n} tests)" if n else f for f, n in counts.items())


def _short(mutant: str) -> str:
  return re.sub(r"^(alexnet_jax|experiments)\.", "", mutant)


def render_mutation(folder: str = RECORDS, equivalent: dict[str, str] | None = None) -> str:
  """docs/MUTATION.md from the records in `folder` (one JSON file a module, and its judged equivalents)."""
  equivalent = load_equivalent(folder) if equivalent is None else equivalent
  records = {}
  for name in MODULES:
    path = os.path.join(folder, f"{name}.json")
    if os.path.exists(path):
      with open(path) as f:
        records[name] = json.load(f)
  lines = [
      "# Mutation testing", "",
      "How strong the tests are where a silent change would corrupt a result: mutmut changes the code",
      "in small ways (an operator, a constant, a call's argument) and counts how many changes some",
      "test catches. Run on demand, not in CI (a module takes tens of minutes on 2 cores):", "",
      "```", "pip install -r requirements-dev.txt",
      "nice -n 15 python -m experiments.mutation                  # every module below, one at a time",
      "nice -n 15 python -m experiments.mutation --modules=store   # one module",
      "nice -n 15 python -m experiments.mutation --modules=store --recheck  # its survivors only, after adding tests",
      "python -m experiments.mutation --report                    # this page from the records", "```", "",
      "Each module runs in its own copy of the tree with the test files mapped to it below; for each",
      "mutant mutmut runs only the tests that reach the mutated function. Killed counts a test failure",
      "or a time-out; the score is killed over the checked mutants not judged equivalent (a mutant no",
      "mapped test reaches counts as surviving; a run stopped early leaves mutants unchecked). Raw",
      "records (every mutant's status, date, tool version, machine):",
      "`experiments/results/mutation/<module>.json`.", "",
      "| module | tests | mutants | checked | killed | equivalent | surviving | score | date | tool |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
  ]
  for name, (module, tests) in MODULES.items():
    if name not in records:
      lines.append(f"| `{module}` | {_test_files(tests)} | not run | | | | | | | |")
      continue
    r, s = records[name], score(records[name], equivalent)
    lines.append(f"| `{module}` | {_test_files(r['tests'])} | {s['total']} | "
                 f"{s['checked']} | {s['killed']} | {len(s['equivalent'])} | {len(s['survivors'])} | "
                 f"{100 * s['score']:.1f}% | "
                 f"{r['date']} | {r['tool']} |")
  lines += ["", "## Surviving mutants judged equivalent", ""]
  listed = [(m, equivalent[m]) for n in records for m in score(records[n], equivalent)["equivalent"]]
  lines += [f"- `{_short(m)}`: {why}" for m, why in listed] or ["None."]
  lines += ["", "## Surviving mutants not yet killed", ""]
  rest = [m for n in records for m in score(records[n], equivalent)["survivors"]]
  lines += [f"- `{_short(m)}` ({records_status(records, m)})" for m in rest] or ["None."]
  lines += ["", "`mutmut show <name>` in the module's copy (.mutation/<module>/) prints a mutant's diff.", ""]
  return "\n".join(lines)


def records_status(records: dict, mutant: str) -> str:
  for r in records.values():
    if mutant in r["status"]:
      return r["status"][mutant]
  return "?"


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--modules", default=",".join(MODULES), help="comma-separated names: " + ",".join(MODULES))
  parser.add_argument("--max_children", type=int, default=2, help="mutants tested at once")
  parser.add_argument("--fresh", action="store_true", help="discard the previous results of these modules")
  parser.add_argument("--recheck", action="store_true",
                      help="run again only the mutants that survived the last run (after adding tests)")
  parser.add_argument("--report", action="store_true", help="only render docs/MUTATION.md from the records")
  parser.add_argument("--check", action="store_true", help="with --report: exit 1 when the file differs")
  args = parser.parse_args(argv)
  names = [n.strip() for n in args.modules.split(",") if n.strip()]
  unknown = [n for n in names if n not in MODULES]
  if unknown or args.max_children < 1:
    print(f"error: unknown module {', '.join(unknown)} (known: {', '.join(MODULES)})" if unknown
          else "error: --max_children must be at least 1", file=sys.stderr)
    return 2
  if not args.report:
    try:
      _tool_version()
    except Exception:  # noqa: BLE001 - PackageNotFoundError
      print("error: mutmut is not installed: pip install -r requirements-dev.txt", file=sys.stderr)
      return 2
    for name in names:
      try:
        s = score(run_module(name, args.max_children, args.fresh, args.recheck))
      except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
      print(f"{name}: {s['killed']}/{s['total']} killed, {len(s['survivors'])} surviving, "
            f"score {100 * s['score']:.1f}%", flush=True)
  text = render_mutation(os.path.join(REPO, RECORDS))
  path = os.path.join(REPO, REPORT)
  if args.check:
    same = os.path.exists(path) and open(path).read() == text
    return 0 if same else 1
  with open(path, "w") as f:
    f.write(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
