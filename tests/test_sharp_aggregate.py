"""Sweep tables, exactly: how member folders are found and read, every cell of a results row, the
machine and date lines, the markdown and CSV texts, the seed-table options, which files `aggregate`
writes, and the command line (its flags, defaults, help and messages).

Hand-made records of a few runs in tmp_path; the plot functions are replaced by recorders, so the
whole file runs in about a second.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os

import pytest

from experiments import aggregate, seeds as seeds_lib, sweep_plots

MR = aggregate.MemberResult


def _run(root, name, summary=None, rows=None, gz=False, machine=None):
  """A member folder: summary.json, metrics.jsonl (or .gz) and machine.json where given."""
  d = root / name
  d.mkdir(parents=True)
  if summary is not None:
    (d / "summary.json").write_text(json.dumps(summary))
  if rows is not None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
      with gzip.open(d / "metrics.jsonl.gz", "wt") as f:
        f.write(text)
    else:
      (d / "metrics.jsonl").write_text(text)
  if machine is not None:
    (d / "machine.json").write_text(json.dumps(machine))
  return d


def _seed(root, name, top1, done=True, epoch=2.0):
  """A seed run stopped at step 200; its summary does not name the number of classes."""
  return _run(root, name, {"done": done, "step": 200, "epoch": epoch, "eval": {"top1": top1, "top5": 0.9},
                           "train": {"loss": 0.5}})


@pytest.fixture
def seed_sweep(tmp_path):
  """baseline and up over seeds 0-2; dead near chance for 10 classes; late stopped at epoch 1.6."""
  root = tmp_path / "abl"
  for s, (b, up, dead) in enumerate([(0.70, 0.74, 0.12), (0.72, 0.75, 0.11), (0.71, 0.77, 0.13)]):
    _seed(root, f"baseline-seed={s}", b)
    _seed(root, f"up-seed={s}", up)
    _seed(root, f"dead-seed={s}", dead)
    _seed(root, f"late-seed={s}", b - 0.01, done=False, epoch=1.6)
  names = [f"{n}-seed={s}" for n in ("baseline", "up", "dead", "late") for s in range(3)]
  (root / "sweep.json").write_text(json.dumps({"baseline": "baseline-seed=0", "members": [
      {"name": n, "paper": {"top1": 1.0, "note": "Table 1"} if n.startswith("up") else None} for n in names]}))
  return root


@pytest.fixture
def plots(monkeypatch):
  """The plot functions as recorders: (name, args) per call; the effect charts report `drawn`."""
  calls = []
  drawn = {"plot_effects": True, "plot_seed_effects": True}

  def recorder(name):
    def record(*args):
      calls.append((name, args))
      return drawn.get(name)
    return record

  for name in ("plot_curves", "plot_effects", "plot_seed_effects"):
    monkeypatch.setattr(sweep_plots, name, recorder(name))
  return calls, drawn


# ---------------------------------------------------------------------------------------------
# Reading records.


def test_metric_reads_the_eval_section_only():
  m = MR("m", "", {"eval": {"top1": "0.25"}, "top5": 0.5}, [], [])
  assert m.metric("top1") == 0.25 and m.metric("top5") is None
  assert MR("m", "", {"eval": None}, [], []).metric("top1") is None
  assert MR("m", "", None, [], []).metric("top1") is None


def test_curves_skip_rows_without_step_or_epoch_and_keep_the_last_write():
  rows = [{"step": 3, "train/loss": 9.0, "eval/top1": 0.9}, {"epoch": 0.3, "train/loss": 8.0, "eval/top1": 0.8},
          {"step": 20, "epoch": 2.0, "train/loss": 1.0, "eval/top1": 0.7},
          {"step": 10, "epoch": 1.0, "train/loss": 3.0}, {"step": 10, "epoch": 1.0, "train/loss": 2.0},
          {"step": 9, "epoch": 0.9, "eval/top1": 0.4}, {"step": 15, "epoch": 1.5}]
  assert aggregate.curves(rows) == ([(1.0, 2.0), (2.0, 1.0)], [(0.9, 0.4), (2.0, 0.7)])
  assert aggregate.curves([]) == ([], [])


def test_compressed_and_plain_metrics_read_the_same(tmp_path):
  lines = (json.dumps({"step": 1, "a": 1}) + "\n\n" + "\ufeff" + json.dumps({"step": 2}) + "\n"
           + json.dumps({"step": 3, "a": 3}) + "\n" + '{"step": 4')
  plain, packed = tmp_path / "plain", tmp_path / "packed"
  plain.mkdir()
  packed.mkdir()
  (plain / "metrics.jsonl").write_text(lines, encoding="utf-8")
  with gzip.open(packed / "metrics.jsonl.gz", "wt", encoding="utf-8") as f:
    f.write(lines)
  expected = [{"step": 1, "a": 1}, {"step": 3, "a": 3}]
  assert aggregate.read_metrics(str(plain)) == aggregate.read_metrics(str(packed)) == expected
  # Both present: the plain file is the live one.
  with gzip.open(plain / "metrics.jsonl.gz", "wt") as f:
    f.write(json.dumps({"step": 99}) + "\n")
  assert aggregate.read_metrics(str(plain)) == expected
  assert aggregate.read_metrics(str(tmp_path / "none")) == []


def test_members_without_a_plan_are_the_folders_with_records(tmp_path):
  root = tmp_path / "s"
  _run(root, "c_plain", rows=[{"step": 1, "epoch": 0.1, "train/loss": 2.0}])
  _run(root, "a_packed", rows=[{"step": 1, "epoch": 0.1, "eval/top1": 0.5}], gz=True)
  _run(root, "b_summary", {"done": True})
  _run(root, "d_machine_only", machine={"host": "h"})
  (root / "e_empty").mkdir()
  (root / "notes.txt").write_text("not a run")
  members, baseline = aggregate.load_members(str(root))
  assert [m.name for m in members] == ["a_packed", "b_summary", "c_plain"] and baseline == "a_packed"
  assert [m.overrides for m in members] == ["(base)"] * 3
  assert members[0].eval_curve == [(0.1, 0.5)] and members[2].train_curve == [(0.1, 2.0)]
  assert members[1].summary == {"done": True} and members[0].summary is None
  assert all(m.machine is None and m.paper is None and m.lr_curve == [] for m in members)
  _run(root, "baseline", {"done": False})
  assert aggregate.load_members(str(root))[1] == "baseline"


def test_a_plan_beside_runs_sets_order_overrides_baseline_and_paper(tmp_path):
  study = tmp_path / "study"
  runs = study / "runs"
  _run(runs, "z_ref", {"done": True}, machine={"host": "h1", "date": "2026-01-02"})
  _run(runs, "a_both", rows=[{"step": 20, "epoch": 2.0, "train/learning_rate": 0.05},
                             {"step": 10, "epoch": 1.0, "train/learning_rate": 0.2, "train/loss": 1.0},
                             {"step": 10, "epoch": 1.0, "train/learning_rate": 0.1},
                             {"step": 30, "train/learning_rate": 9.0}, {"epoch": 3.5, "train/learning_rate": 8.0},
                             {"step": 40, "epoch": 4.0, "train/loss": 0.5}])
  _run(runs, "m_args", {"done": True})
  (study / "sweep.json").write_text(json.dumps({"baseline": "a_both", "members": [
      {"name": "z_ref", "args": None, "overrides": None},
      {"name": "never", "args": {"seed": "1"}},
      {"name": "a_both", "args": {"lrn": "False", "seed": "2"}, "overrides": {"schedule.base_lr": "0.1"},
       "paper": {"top1": -1.4}},
      {"name": "m_args", "args": {"x": "1"}}]}))
  members, baseline = aggregate.load_members(str(study))
  assert [m.name for m in members] == ["z_ref", "a_both", "m_args"] and baseline == "a_both"
  assert [m.overrides for m in members] == ["(base)", "lrn=False seed=2 --config.schedule.base_lr=0.1", "x=1"]
  ref, both, _ = members
  assert ref.machine == {"host": "h1", "date": "2026-01-02"} and both.machine is None
  assert both.paper == {"top1": -1.4} and ref.paper is None
  assert both.lr_curve == [(1.0, 0.1), (2.0, 0.05)] and both.train_curve == [(1.0, 1.0), (4.0, 0.5)]
  # The plan may also sit in runs/ itself.
  (study / "sweep.json").rename(runs / "sweep.json")
  assert aggregate.load_members(str(study)) == (members, "a_both")


def test_load_members_messages(tmp_path):
  missing = str(tmp_path / "nope")
  with pytest.raises(FileNotFoundError) as e:
    aggregate.load_members(missing)
  assert str(e.value) == f"Sweep folder {missing!r} does not exist; pass <workdir_root>/<sweep name>."
  empty = tmp_path / "empty"
  (empty / "runs" / "idle").mkdir(parents=True)
  with pytest.raises(FileNotFoundError) as e:
    aggregate.load_members(str(empty))
  assert str(e.value) == (f"No member runs in {str(empty / 'runs')!r} "
                          "(no sub-folder has summary.json or metrics.jsonl).")
  planned = tmp_path / "planned"
  planned.mkdir()
  (planned / "sweep.json").write_text(json.dumps({"members": [{"name": "a"}, {"name": "b"}]}))
  with pytest.raises(FileNotFoundError) as e:
    aggregate.load_members(str(planned))
  assert str(e.value) == (f"No member of the sweep in {str(planned)!r} has started "
                          "(no summary.json or metrics.jsonl).")
  (planned / "sweep.json").write_text("{torn")
  _run(planned, "b", {"done": True})
  assert [m.name for m in aggregate.load_members(str(planned))[0]] == ["b"]


# ---------------------------------------------------------------------------------------------
# The results table.


def _row(**cells):
  row = {k: "" for k, _ in aggregate.COLUMNS}
  row.update(cells)
  return row


def test_table_rows_every_cell():
  lrn = MR("lrn", "lrn=False", {"done": True, "epoch": "1.5", "eval": {"top1": 0.585, "top5": 0.91}}, [], [],
           paper={"top1": -1.4, "top5": 0.3, "note": "Sec. 3.3"})
  base = MR("base", "(base)", {"done": True, "epoch": 2, "wall_s": 100.4, "img_per_s": 321.6,
                               "eval": {"top1": 0.6, "top5": 0.9}}, [], [])
  half = MR("half", "seed=1", {"epoch": 0.5, "eval": {"top1": 0.5}}, [(0.5, 2.0)], [], paper={"top1": -2})
  curve = MR("curve", "x=1", None, [(0.1, 3.0)], [])
  gone = MR("gone", "x=2", None, [], [])
  rows = aggregate.table_rows([lrn, base, half, curve, gone], "base")
  assert rows == [
      _row(member="lrn", overrides="lrn=False", status="done", top1="58.50", top5="91.00", d_top1="-1.50",
           d_top5="+1.00", paper_d_top1="-1.40", paper_d_top5="+0.30", paper_note="Sec. 3.3", epochs="1.50"),
      _row(member="base", overrides="(base)", status="done", top1="60.00", top5="90.00", epochs="2.00",
           wall_s="100", img_per_s="322"),
      _row(member="half", overrides="seed=1", status="partial", top1="50.00", d_top1="-10.00",
           paper_d_top1="-2.00", epochs="0.50"),
      _row(member="curve", overrides="x=1", status="partial"),
      _row(member="gone", overrides="x=2", status="missing")]
  # No such baseline: no differences at all.
  assert [(r["d_top1"], r["d_top5"]) for r in aggregate.table_rows([lrn, base], "other")] == [("", "")] * 2


def test_points_and_percent():
  assert (aggregate._points(None), aggregate._points(2), aggregate._points(-0.125)) == ("", "+2.00", "-0.12")
  assert (aggregate._pct(None), aggregate._pct(0.5), aggregate._pct(0)) == ("", "50.00", "0.00")


def test_csv_text_and_file(tmp_path):
  rows = [{"a": "1", "b": "x,y"}, {"a": "", "b": "q\"r"}]
  text = aggregate.csv_text(rows, [("a", "A"), ("b", "B")])
  assert text == 'a,b\r\n1,"x,y"\r\n,"q""r"\r\n'
  row = _row(member="m")
  aggregate.write_csv([row], str(tmp_path / "r.csv"))
  assert (tmp_path / "r.csv").read_bytes() == aggregate.csv_text([row]).encode()
  assert aggregate.csv_text([row]).startswith("member,overrides,status,top1,top5,d_top1,d_top5,paper_d_top1,")


def test_markdown_exact():
  row = _row(member="m", overrides="a|b", status="done", top1="1.00")
  header = ("| member | overrides | status | top-1 % | top-5 % | Δ top-1 (pts) | Δ top-5 (pts) | paper Δ top-1 | "
            "paper Δ top-5 | epochs | wall s | img/s | paper says |")
  legend = ("Δ = member − `base` in accuracy points (negative: the change hurt). Paper Δ: the effect the paper "
            "reports on ImageNet, as accuracy points; blank where it gives none.")
  body = header + "\n|" + "---|" * 13 + "\n| m | a\\|b | done | 1.00 |" + "  |" * 9 + "\n"
  assert aggregate.markdown([row], "base", "T", "cmd x", "Prov.") == (
      "# T\n\nProv.\nCommand: `cmd x`\n\n" + legend + "\n\n" + body)
  assert aggregate.markdown([row], "base", "T") == (
      "# T\n\nMachine and date: not recorded with these runs (no machine.json).\n\n" + legend + "\n\n" + body)


def test_render_results_from_a_folder(tmp_path):
  root = tmp_path / "abl"
  _run(root, "baseline", {"done": True, "eval": {"top1": 0.5}}, machine={"description": "box", "date": "2026-03-04"})
  _run(root, "b", {"done": True, "eval": {"top1": 0.6}})
  members, baseline = aggregate.load_members(str(root))
  rows = aggregate.table_rows(members, "baseline")
  prov = "Machine: box (1 run(s) without machine.json). Date: 2026-03-04."
  assert aggregate.render_results_md(str(root) + "/") == aggregate.markdown(rows, "baseline", "Sweep `abl`", None, prov)
  assert aggregate.render_results_md(str(root), "cmd", "T") == aggregate.markdown(rows, "baseline", "T", "cmd", prov)
  assert aggregate.render_results_csv(str(root)) == aggregate.csv_text(rows)
  assert [(r["member"], r["d_top1"]) for r in rows] == [("b", "+10.00"), ("baseline", "")]


# ---------------------------------------------------------------------------------------------
# Machines and dates.


def test_machine_of_each_record_shape():
  of = aggregate._machine_of
  assert of({"description": "one H200", "device_kind": "X", "host": "h"}) == "one H200"
  assert of({"device_kind": "NVIDIA H100", "device": "gpu", "device_count": 2, "cpu": "EPYC"}) == "2× NVIDIA H100, EPYC"
  assert of({"device": "TPU v4", "device_count": 1, "cpu": "Xeon"}) == "TPU v4, Xeon"
  assert of({"device_kind": "GPU", "device_count": 0, "cpu": "cpu"}) == "GPU"
  assert of({"device_kind": "cpu", "device_count": 1, "cpu": "Ryzen"}) == "Ryzen"
  assert of({"device_count": 4, "cpu": "Xeon"}) == "Xeon"
  assert of({"device_kind": "CPU", "host": "node-3"}) == "node-3"
  assert of({"device_kind": "GPU", "device_count": 3}) == "3× GPU"
  assert of({}) == "unnamed machine"


def _with_machine(name, machine):
  return MR(name, "", None, [], [], machine=machine)


def test_recorded_provenance_lists_machines_dates_and_gaps():
  a = {"description": "A", "date": "2026-11-28T10:00:00"}
  b = {"description": "B", "date": "2026-11-27"}
  members = [_with_machine("1", b), _with_machine("2", a), _with_machine("3", {"description": "A"}),
             _with_machine("4", None), _with_machine("5", ["not", "a", "record"]),
             _with_machine("6", {"description": "A", "date": "2026-11-29"})]
  assert aggregate.recorded_provenance(members) == (
      "Machine: A; B (2 run(s) without machine.json). Date: 2026-11-27 to 2026-11-29.")
  assert aggregate.recorded_provenance(members[:2]) == "Machine: A; B. Date: 2026-11-27 to 2026-11-28."
  assert aggregate.recorded_provenance(members[1:2]) == "Machine: A. Date: 2026-11-28."
  assert aggregate.recorded_provenance(members[2:3]) == "Machine: A. Date: not recorded."
  assert aggregate.recorded_provenance(members[3:5]) == (
      "Machine and date: not recorded with these runs (no machine.json).")


def test_machine_description_reads_cpuinfo_then_platform(monkeypatch):
  cpuinfo = "processor\t: 0\nmodel name\t: Fancy CPU: v2 @ 3GHz\nmodel name\t: Other\n"

  def fake_open(path, *args, **kwargs):
    if path == "/proc/cpuinfo" and cpuinfo is not None:
      return io.StringIO(cpuinfo)
    raise OSError(path)

  monkeypatch.setattr(aggregate, "open", fake_open, raising=False)
  monkeypatch.setattr(aggregate.platform, "processor", lambda: "")
  monkeypatch.setattr(aggregate.platform, "machine", lambda: "mach")
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
  monkeypatch.setattr(os, "cpu_count", lambda: 7)
  assert aggregate.machine_description() == "Fancy CPU: v2 @ 3GHz, 3 CPU(s)"
  cpuinfo = None
  assert aggregate.machine_description() == "mach, 3 CPU(s)"
  monkeypatch.setattr(aggregate.platform, "processor", lambda: "proc")
  monkeypatch.delattr(os, "sched_getaffinity")
  assert aggregate.machine_description() == "proc, 7 CPU(s)"
  cpuinfo = "flags\t: fpu\n"
  assert aggregate.machine_description() == "proc, 7 CPU(s)"


# ---------------------------------------------------------------------------------------------
# Seed tables.


def test_seed_options_bounds_and_messages():
  for alpha in (1e-9, 0.4999):
    assert aggregate.SeedOptions(alpha=alpha, power=0.5).alpha == alpha
  for alpha in (0.0, 0.5, -0.1):
    with pytest.raises(ValueError) as e:
      aggregate.SeedOptions(alpha=alpha)
    assert str(e.value) == f"alpha must lie in (0, 0.5), got {alpha}"
  assert aggregate.SeedOptions(alpha=0.3, power=0.3001).power == 0.3001
  assert aggregate.SeedOptions(power=0.9999).power == 0.9999
  for alpha, power in ((0.3, 0.3), (0.3, 0.2), (0.05, 1.0), (0.05, 1.5)):
    with pytest.raises(ValueError) as e:
      aggregate.SeedOptions(alpha=alpha, power=power)
    assert str(e.value) == f"power must lie in (alpha, 1), got {power}"
  for margin in (None, 0.5, 2.0):
    assert aggregate.SeedOptions(margin=margin).margin == margin
  for margin in (0.0, -1.0):
    with pytest.raises(ValueError) as e:
      aggregate.SeedOptions(margin=margin)
    assert str(e.value) == f"the equivalence margin must be positive, got {margin}"


def test_seed_study_uses_every_option(seed_sweep):
  members, baseline = aggregate.load_members(str(seed_sweep))
  assert aggregate.seed_study([m for m in members if "-seed=" not in m.name], baseline) == ([], None)
  groups, result = aggregate.seed_study(members, baseline)
  assert [g.name for g in groups] == ["baseline", "up", "dead", "late"] and sorted(groups[3].runs) == []
  assert (result.baseline, result.alpha, result.target, result.margin) == ("baseline", 0.05, 0.8, None)
  assert result.comparisons["dead"].status != "did not train"
  options = aggregate.SeedOptions(min_epochs=1.5, alpha=0.1, power=0.9, margin=2.0, num_classes=10)
  groups, result = aggregate.seed_study(members, baseline, options)
  assert sorted(groups[3].runs) == [0, 1, 2]
  assert (result.alpha, result.target, result.margin) == (0.1, 0.9, 2.0)
  assert result.comparisons["dead"].status == "did not train"


def _csv_rows(text):
  return {r["member"]: r for r in csv.DictReader(io.StringIO(text))}


def test_render_seed_tables(seed_sweep, tmp_path):
  md = aggregate.render_seeds_md(str(seed_sweep))
  assert md.startswith("# Sweep `abl` over seeds\n\nMachine and date: not recorded with these runs "
                       "(no machine.json).\n\nCounted: finished runs. ")
  assert "family-wise α = 0.05" in md and "with 80% power" in md and "No equivalence margin" in md
  options = aggregate.SeedOptions(min_epochs=1.5, alpha=0.1, power=0.9, margin=2.0, num_classes=10)
  md = aggregate.render_seeds_md(str(seed_sweep), options, "run it", "Title")
  assert md.startswith("# Title\n\nMachine and date: not recorded with these runs (no machine.json).\n"
                       "Command: `run it`\n\nCounted: finished runs and runs stopped after at least 1.5 epochs. ")
  assert "family-wise α = 0.1" in md and "with 90% power" in md and "margin, fixed before the runs: ±2 points" in md
  text = aggregate.render_seeds_csv(str(seed_sweep), options)
  assert text.split("\r\n")[0] == ",".join(k for k, _ in seeds_lib.SEED_COLUMNS)
  rows = _csv_rows(text)
  assert list(rows) == ["baseline", "up", "dead", "late"]
  assert rows["dead"]["verdict"] == "did not train" and rows["late"]["seeds"] == "0,1,2"
  assert rows["up"]["d_top1"] == "+4.33" and rows["up"]["sign"] == "matches"
  for r in rows.values():
    assert "| " + " | ".join(r[k].replace("|", "\\|") for k, _ in seeds_lib.SEED_COLUMNS) + " |" in md
  assert _csv_rows(aggregate.render_seeds_csv(str(seed_sweep)))["late"]["seeds"] == "-"
  _run(tmp_path / "plain", "baseline", {"done": True})
  with pytest.raises(FileNotFoundError) as e:
    aggregate.render_seeds_md(str(tmp_path / "plain"))
  assert str(e.value) == (f"No member of {str(tmp_path / 'plain')!r} is named <member>-seed=<k>: "
                          "no seed table to write.")


# ---------------------------------------------------------------------------------------------
# What aggregate writes, and the command line.


def test_aggregate_writes_every_table_and_asks_for_every_plot(seed_sweep, tmp_path, plots):
  calls, _ = plots
  out = tmp_path / "out"
  options = aggregate.SeedOptions(margin=2.0, num_classes=10)
  written = aggregate.aggregate(str(seed_sweep) + "/", str(out), "cmd", options=options)
  assert written == [str(out / f) for f in ("results.md", "results.csv", "curves.png", "effects.png", "seeds.md",
                                            "seeds.csv", "effects_seeds.png")]
  folder = str(seed_sweep)
  assert (out / "results.md").read_text() == aggregate.render_results_md(folder, "cmd")
  assert (out / "results.csv").read_bytes() == aggregate.render_results_csv(folder).encode()
  assert (out / "seeds.md").read_text() == aggregate.render_seeds_md(folder, options, "cmd")
  assert (out / "seeds.csv").read_bytes() == aggregate.render_seeds_csv(folder, options).encode()
  assert [c[0] for c in calls] == ["plot_curves", "plot_effects", "plot_seed_effects"]
  (_, (members, path, title)), (_, effects), (_, seed_effects) = calls
  assert [m.name for m in members][:2] == ["baseline-seed=0", "baseline-seed=1"] and len(members) == 12
  assert (path, title) == (str(out / "curves.png"), "sweep abl")
  assert effects[1:] == ("baseline-seed=0", str(out / "effects.png"), "sweep abl: effect of each change")
  assert [m.name for m in effects[0]] == [m.name for m in members]
  groups, result, path, title = seed_effects
  assert [g.name for g in groups] == ["baseline", "up", "dead", "late"]
  assert (result.margin, result.comparisons["dead"].status) == (2.0, "did not train")
  assert (path, title) == (str(out / "effects_seeds.png"), "sweep abl: effects over seeds")
  assert not (out / "curves.png").exists()


def test_aggregate_defaults_and_charts_not_drawn(seed_sweep, tmp_path, plots):
  calls, drawn = plots
  drawn.update(plot_effects=False, plot_seed_effects=False)
  written = aggregate.aggregate(str(seed_sweep), min_epochs=1.5)
  folder = str(seed_sweep)
  assert written == [os.path.join(folder, f) for f in ("results.md", "results.csv", "curves.png", "seeds.md",
                                                       "seeds.csv")]
  assert "Command:" not in (seed_sweep / "results.md").read_text()
  assert (seed_sweep / "seeds.md").read_text() == aggregate.render_seeds_md(
      folder, aggregate.SeedOptions(min_epochs=1.5))
  # Not over seeds: the results table and its plots only; the output folder is made.
  plain = tmp_path / "plain"
  _run(plain, "baseline", {"done": True, "eval": {"top1": 0.5}}, machine={"description": "box"})
  _run(plain, "b", {"done": True, "eval": {"top1": 0.6}})
  drawn.update(plot_effects=True)
  out = tmp_path / "deep" / "out"
  assert aggregate.aggregate(str(plain), str(out)) == [str(out / f) for f in ("results.md", "results.csv",
                                                                              "curves.png", "effects.png")]
  assert sorted(os.listdir(out)) == ["results.csv", "results.md"]
  assert (out / "results.md").read_text() == aggregate.render_results_md(str(plain))
  assert "Machine: box (1 run(s) without machine.json)." in (out / "results.md").read_text()


def test_main_flags_reach_the_tables(seed_sweep, tmp_path, plots, capsys):
  out = tmp_path / "out"
  flags = [f"--out={out}", "--command=run it", "--min_epochs=1.5", "--alpha=0.1", "--power=0.9", "--margin=2",
           "--num_classes=10"]
  assert aggregate.main([str(seed_sweep), *flags]) == 0
  options = aggregate.SeedOptions(1.5, 0.1, 0.9, 2.0, 10)
  folder = str(seed_sweep)
  assert (out / "seeds.md").read_text() == aggregate.render_seeds_md(folder, options, "run it")
  assert (out / "seeds.csv").read_text() == aggregate.render_seeds_csv(folder, options).replace("\r\n", "\n")
  assert (out / "results.md").read_text() == aggregate.render_results_md(folder, "run it")
  names = ("results.md", "results.csv", "curves.png", "effects.png", "seeds.md", "seeds.csv", "effects_seeds.png")
  captured = capsys.readouterr()
  assert captured.out == "Wrote " + ", ".join(str(out / f) for f in names) + "\n" and captured.err == ""


def test_main_defaults(seed_sweep, plots, capsys):
  late = seed_sweep / "late-seed=0" / "summary.json"
  late.write_text(late.read_text().replace('"done": false', '"done": true'))
  assert aggregate.main([str(seed_sweep)]) == 0
  assert (seed_sweep / "seeds.md").read_text() == aggregate.render_seeds_md(str(seed_sweep))
  assert "Command:" not in (seed_sweep / "results.md").read_text()
  assert capsys.readouterr().out.startswith("Wrote " + os.path.join(str(seed_sweep), "results.md") + ", ")


def test_main_errors_go_to_stderr(tmp_path, capsys):
  missing = str(tmp_path / "nope")
  assert aggregate.main([missing]) == 2
  captured = capsys.readouterr()
  assert captured.out == "" and captured.err == (
      f"error: Sweep folder {missing!r} does not exist; pass <workdir_root>/<sweep name>.\n")
  assert aggregate.main([missing, "--power=0.01"]) == 2
  assert capsys.readouterr().err == "error: power must lie in (alpha, 1), got 0.01\n"


def test_main_help(monkeypatch, capsys):
  monkeypatch.setenv("COLUMNS", "400")
  with pytest.raises(SystemExit) as e:
    aggregate.main(["--help"])
  assert e.value.code == 0
  text = " ".join(capsys.readouterr().out.split())
  assert text.startswith("usage: python -m experiments.aggregate [-h] [--out OUT] [--command COMMAND] "
                         "[--min_epochs MIN_EPOCHS] [--alpha ALPHA] [--power POWER] [--margin MARGIN] "
                         "[--num_classes NUM_CLASSES] folder Result tables and learning-curve plots for a sweep. "
                         "positional arguments: folder ")
  for flag, words in [
      ("folder", "the sweep folder, <workdir_root>/<sweep> (or a study folder with runs/)"),
      ("--out OUT", "where to write the table and plots (default: the sweep folder)"),
      ("--command COMMAND", "the command that produced the runs, recorded in results.md"),
      ("--min_epochs MIN_EPOCHS", "seed statistics also count runs stopped after at least this many epochs"),
      ("--alpha ALPHA", "family-wise two-sided level of the seed table"),
      ("--power POWER", "power at which the minimum detectable effect is given"),
      ("--margin MARGIN", "equivalence margin in top-1 points, fixed beforehand; without it nothing is called equal"),
      ("--num_classes NUM_CLASSES", "classes, for 'did not train', where a run's summary.json does not say")]:
    assert f" {flag} {words}" in text
