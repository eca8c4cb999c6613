"""Tables and plots from hand-made member folders; Figure 1 numbers from hand-made logs."""

import csv
import gzip
import io
import json
import math

import pytest
from scipy import stats as sps

from experiments import aggregate, figure1, sweep_plots


def _member(folder, name, top1, top5, curve, done=True, wall=100.0):
  d = folder / name
  d.mkdir(parents=True)
  (d / "summary.json").write_text(json.dumps({
      "done": done, "step": 20, "epoch": 2.0, "wall_s": wall, "img_per_s": 321.0,
      "eval": {"top1": top1, "top5": top5, "loss": 1.0, "num_examples": 100}}))
  rows = []
  for step, (loss, acc) in curve:
    rows.append({"step": step, "train/loss": loss, "train/top1": 0.5, "epoch": step / 10})
    rows.append({"step": step, "eval/top1": acc, "eval/top5": 0.9, "epoch": step / 10})
  (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"step\": 3")  # torn last line


@pytest.fixture
def sweep_dir(tmp_path):
  folder = tmp_path / "abl"
  _member(folder, "baseline", 0.60, 0.90, [(10, (2.0, 0.4)), (20, (1.5, 0.6))])
  _member(folder, "lrn_off", 0.585, 0.89, [(10, (2.1, 0.38)), (20, (1.6, 0.585))], wall=90.0)
  _member(folder, "half", 0.3, 0.7, [(10, (2.2, 0.3))], done=False)
  (folder / "sweep.json").write_text(json.dumps({
      "baseline": "baseline",
      "members": [{"name": "baseline", "args": {}, "overrides": {}},
                  {"name": "lrn_off", "args": {"lrn": "False"}, "overrides": {"schedule.base_lr": "0.1"},
                   "paper": {"top1": -1.4, "top5": -1.2, "note": "Sec. 3.3"}},
                  {"name": "half", "args": {"seed": "1"}},
                  {"name": "never_started", "args": {"seed": "2"}}]}))
  return folder


def test_curves_keep_last_write_per_step():
  rows = [{"step": 10, "epoch": 1.0, "train/loss": 3.0}, {"step": 10, "epoch": 1.0, "train/loss": 2.0},
          {"step": 5, "epoch": 0.5, "train/loss": 4.0}, {"step": 10, "epoch": 1.0, "eval/top1": 0.25},
          {"step": 7, "steps_per_sec": 1.0}]
  train, evals = aggregate.curves(rows)
  assert train == [(0.5, 4.0), (1.0, 2.0)] and evals == [(1.0, 0.25)]


def test_table_differences_and_paper_columns(sweep_dir):
  members, baseline = aggregate.load_members(str(sweep_dir))
  rows = {r["member"]: r for r in aggregate.table_rows(members, baseline)}
  assert rows["baseline"]["top1"] == "60.00" and rows["baseline"]["d_top1"] == ""
  assert rows["lrn_off"]["d_top1"] == "-1.50" and rows["lrn_off"]["d_top5"] == "-1.00"
  assert rows["lrn_off"]["paper_d_top1"] == "-1.40" and rows["lrn_off"]["paper_d_top5"] == "-1.20"
  assert rows["lrn_off"]["overrides"] == "lrn=False --config.schedule.base_lr=0.1"
  assert rows["half"]["status"] == "partial" and rows["half"]["d_top1"] == "-30.00"
  assert rows["lrn_off"]["wall_s"] == "90" and rows["lrn_off"]["img_per_s"] == "321"


def test_aggregate_writes_markdown_csv_and_png(sweep_dir, tmp_path):
  out = tmp_path / "out"
  paths = aggregate.aggregate(str(sweep_dir), str(out), command="python -m experiments.sweep x")
  md, csv_path, png = paths[:3]
  text = open(md).read()
  assert "not recorded with these runs" in text and "`python -m experiments.sweep x`" in text
  assert "| lrn_off |" in text and "-1.50" in text
  with open(csv_path) as f:
    rows = list(csv.DictReader(f))
  assert [r["member"] for r in rows] == ["baseline", "lrn_off", "half"]  # never_started is left out
  assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and (out / "curves.png").stat().st_size > 5000


def test_effects_chart_seed_noise_and_paper(sweep_dir, tmp_path):
  members, baseline = aggregate.load_members(str(sweep_dir))
  # 'half' differs from the baseline only in its seed: it sets the noise band, not a bar.
  assert [m.name for m in sweep_plots.seed_replicas(members, baseline)] == ["half"]
  assert sweep_plots.seed_noise(members, baseline) == pytest.approx(30.0)
  paths = aggregate.aggregate(str(sweep_dir), str(tmp_path / "out"))
  assert paths[-1].endswith("effects.png")
  assert open(paths[-1], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
  # Only a baseline: nothing to chart, no file.
  only = [m for m in members if m.name == baseline]
  assert not sweep_plots.plot_effects(only, baseline, str(tmp_path / "none.png"))
  assert not (tmp_path / "none.png").exists()


def test_aggregate_without_plan_finds_member_folders(tmp_path):
  folder = tmp_path / "s"
  _member(folder, "b_other", 0.5, 0.8, [(10, (2.0, 0.5))])
  _member(folder, "baseline", 0.4, 0.8, [(10, (2.0, 0.4))])
  (folder / "logs").mkdir()
  members, baseline = aggregate.load_members(str(folder))
  assert [m.name for m in members] == ["b_other", "baseline"] and baseline == "baseline"
  rows = aggregate.table_rows(members, baseline)
  assert rows[0]["d_top1"] == "+10.00"


def test_aggregate_errors_are_clear(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    aggregate.load_members(str(tmp_path / "nope"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="No member runs"):
    aggregate.load_members(str(tmp_path / "empty"))
  assert aggregate.main([str(tmp_path / "nope")]) == 2


def _fig_run(folder, name, top1_per_log, steps_per_log=5, steps_per_epoch=10):
  d = folder / name
  d.mkdir(parents=True)
  rows = [{"step": (i + 1) * steps_per_log, "train/top1": a, "train/loss": 1.0,
           "epoch": (i + 1) * steps_per_log / steps_per_epoch} for i, a in enumerate(top1_per_log)]
  (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_epoch_errors_average_log_intervals_and_drop_partial_epochs():
  rows = [{"step": 5, "epoch": 0.5, "train/top1": 0.4}, {"step": 10, "epoch": 1.0, "train/top1": 0.6},
          {"step": 15, "epoch": 1.5, "train/top1": 0.8}, {"step": 20, "epoch": 2.0, "train/top1": 0.9},
          {"step": 25, "epoch": 2.5, "train/top1": 0.95}]
  assert figure1.epoch_errors(rows) == pytest.approx([0.5, 0.15])
  assert figure1.epochs_to([0.5, 0.3, 0.2], 0.25) == 3 and figure1.epochs_to([0.5], 0.25) is None


def test_figure1_ratio_exact_and_lower_bound(tmp_path):
  root = tmp_path / "figure1"
  _fig_run(root, "relu", [0.5, 0.6, 0.8, 0.8])                    # epoch errors 0.45, 0.2
  _fig_run(root, "tanh", [0.4, 0.5, 0.6, 0.6, 0.7, 0.7, 0.8, 0.8])  # 0.55, 0.4, 0.3, 0.2
  result = figure1.figure1(str(root))
  assert result["epochs_to_threshold"] == {"relu": 2, "tanh": 4}
  assert result["speedup"]["ratio"] == pytest.approx(2.0) and result["speedup"]["bound"] == "exact"
  assert (root / "figure1.png").stat().st_size > 5000 and (root / "figure1.json").exists()
  md = (root / "figure1.md").read_text()
  assert "speed-up 2.0x (4 vs 2 epochs)" in md and "Machine:" in md and "| 4 |  | 20.0 |" in md

  slow = figure1.speedup(2, None, 6)
  assert slow["bound"] == "lower" and slow["ratio"] == pytest.approx(3.5) and "> 3.5x" in slow["text"]
  assert figure1.speedup(None, 3, 6)["ratio"] is None


def test_figure1_missing_run_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="relu/metrics.jsonl is missing"):
    figure1.figure1(str(tmp_path))
  with pytest.raises(ValueError, match="between 0 and 1"):
    figure1.figure1(str(tmp_path), threshold=25)


def _seed_member(folder, name, top1, step=200, done=True, loss=0.5, machine=None, gz=False, num_classes=10):
  d = folder / name
  d.mkdir(parents=True)
  (d / "summary.json").write_text(json.dumps({
      "done": done, "step": step, "epoch": step / 100, "num_classes": num_classes,
      "eval": {"top1": top1, "top5": 0.9}, "train": {"loss": loss}}))
  row = json.dumps({"step": step, "epoch": step / 100, "eval/top1": top1, "train/loss": loss,
                    "train/learning_rate": 0.1}) + "\n"
  if gz:
    with gzip.open(d / "metrics.jsonl.gz", "wt") as f:
      f.write(row)
  else:
    (d / "metrics.jsonl").write_text(row)
  if machine:
    (d / "machine.json").write_text(json.dumps(machine))


H200 = {"host": "gpu-7", "device_kind": "NVIDIA H200", "device_count": 1, "cpu": "AMD EPYC 9654",
        "date": "2026-11-27T10:00:00", "versions": {"jax": "0.4"}, "command": "python main.py"}


@pytest.fixture
def seed_study(tmp_path):
  """A study folder with its raw records under runs/: four seeds, every kind of member.

  baseline 70, 72, 71, 73; lrn_off 68, 71, 69, 70 (d = −2, −1, −2, −3: mean −2, sd √(2/3));
  pca_off 71, 71, 72, 72 (d = ±1: mean 0, sd √(4/3)); dead at chance; short stopped at step 100
  in every seed; one ran seed 0 only.
  """
  runs = tmp_path / "study" / "runs"
  values = {"baseline": [70, 72, 71, 73], "lrn_off": [68, 71, 69, 70], "pca_off": [71, 71, 72, 72],
            "dead": [9.5, 11.0, 12.0, 40.0], "short": [60, 61, 62, 63]}
  names = []
  for seed in range(4):
    for member, v in values.items():
      name = f"{member}-seed={seed}"
      _seed_member(runs, name, v[seed] / 100, step=100 if member == "short" else 200,
                   machine=dict(H200, date=f"2026-11-2{7 + seed % 2}"), gz=member == "pca_off")
      names.append(name)
  _seed_member(runs, "one-seed=0", 0.75, machine=H200)
  names.append("one-seed=0")
  paper = {"lrn_off": {"top1": -1.4, "note": "Sec. 3.3"}, "pca_off": {"top1": -1.0}}
  (runs / "sweep.json").write_text(json.dumps({"sweep": "abl", "baseline": "baseline", "members": [
      {"name": n, "paper": paper.get(n.split("-seed=")[0])} for n in names]}))
  return tmp_path / "study"


def test_seed_table_paired_t_holm_and_verdicts(seed_study):
  rows = {r["member"]: r for r in csv.DictReader(io.StringIO(aggregate.render_seeds_csv(str(seed_study))))}
  assert list(rows) == ["baseline", "lrn_off", "pca_off", "dead", "short", "one"]
  assert rows["baseline"]["verdict"] == "baseline" and rows["baseline"]["top1"] == "71.50 ± 1.29"
  lrn = rows["lrn_off"]
  sd = math.sqrt(2 / 3)
  assert (lrn["n"], lrn["seeds"], lrn["d_top1"], lrn["sd_d"]) == ("4", "0,1,2,3", "-2.00", f"{sd:.2f}")
  half = sps.t.ppf(0.975, 3) * sd / 2                       # 95% t interval [−3.30, −0.70]
  assert lrn["ci"] == f"[{-2 - half:+.2f}, {-2 + half:+.2f}]" == "[-3.30, -0.70]"
  # Family {lrn_off, pca_off}: lrn_off has the smaller p (0.0163), tested at 0.05/2; adjusted p = 2·p.
  p = sps.ttest_rel([68, 71, 69, 70], [70, 72, 71, 73]).pvalue
  assert lrn["p_holm"] == f"{2 * p:.3f}" == "0.033"
  half = sps.t.ppf(1 - 0.025 / 2, 3) * sd / 2               # Holm interval at 0.025: [−3.71, −0.29]
  assert lrn["ci_holm"] == f"[{-2 - half:+.2f}, {-2 + half:+.2f}]" == "[-3.71, -0.29]"
  assert lrn["verdict"] == "resolved" and lrn["sign"] == "matches" and lrn["paper_d_top1"] == "-1.40"
  assert lrn["mde"] == "2.22"                                # power 0.8 at α = 0.025, n = 4
  pca = rows["pca_off"]
  assert (pca["d_top1"], pca["p_holm"], pca["verdict"], pca["sign"]) == ("+0.00", "1.000", "unresolved", "")
  # At chance in seed 0 (9.5 %, chance 10 %): no verdict, no interval, outside the family.
  assert rows["dead"]["verdict"] == "did not train"
  assert rows["dead"]["d_top1"] == rows["dead"]["ci"] == rows["dead"]["p_holm"] == rows["dead"]["mde"] == ""
  assert "did not train: seed(s) 0,1,2" in rows["dead"]["not_counted"]
  assert rows["short"]["verdict"] == "not comparable" and rows["short"]["n"] == "0"
  assert "seed 0: stopped at step 100, the baseline at step 200" in rows["short"]["not_counted"]
  assert rows["one"]["verdict"] == "too few seeds" and rows["one"]["n"] == "1" and rows["one"]["d_top1"] == "+5.00"


def test_seed_table_names_the_recorded_machine_and_margin(seed_study, tmp_path):
  md = aggregate.render_seeds_md(str(seed_study))
  assert "Machine: NVIDIA H200, AMD EPYC 9654. Date: 2026-11-27 to 2026-11-28." in md
  assert "No equivalence margin was set" in md and "equivalent" not in md.split("| member |")[1]
  assert "Holm: step-down over the 2 member(s) tested" in md
  # A margin stated beforehand: pca_off (Δ 0, 90% interval ±1.36) is equivalent within ±1.5, not ±1.
  within = aggregate.render_seeds_csv(str(seed_study), aggregate.SeedOptions(margin=1.5))
  assert "equivalent within ±1.5" in within
  assert "equivalent" not in aggregate.render_seeds_csv(str(seed_study), aggregate.SeedOptions(margin=1.0))
  assert "Equivalence margin, fixed before the runs: ±1.5 points" in aggregate.render_seeds_md(
      str(seed_study), aggregate.SeedOptions(margin=1.5))
  # The files aggregate writes are the rendered texts, byte for byte.
  out = tmp_path / "out"
  written = aggregate.aggregate(str(seed_study), str(out))
  assert (out / "seeds.md").read_text() == md and any(p.endswith("effects_seeds.png") for p in written)
  assert (out / "seeds.csv").read_bytes().decode() == aggregate.render_seeds_csv(str(seed_study))
  assert (out / "results.md").read_text() == aggregate.render_results_md(str(seed_study))
  assert aggregate.main([str(seed_study), f"--out={out}", "--margin=1.5"]) == 0
  assert "| equivalent within ±1.5 |" in (out / "seeds.md").read_text()


def test_seed_counting_rule_and_bad_options(tmp_path, capsys):
  folder = tmp_path / "abl"
  for name, top1 in [("baseline-seed=0", 0.70), ("baseline-seed=1", 0.72), ("lrn_off-seed=0", 0.66)]:
    _seed_member(folder, name, top1)
  _seed_member(folder, "lrn_off-seed=1", 0.60, step=120, done=False)
  groups = aggregate.seed_study(aggregate.load_members(str(folder))[0], "baseline")[0]
  lrn = next(g for g in groups if g.name == "lrn_off")
  assert sorted(lrn.runs) == [0] and lrn.skipped == {1: "stopped at epoch 1"}
  # Counting runs stopped after enough epochs: seed 1 counts, but did not reach the baseline's step.
  md = aggregate.render_seeds_md(str(folder), aggregate.SeedOptions(min_epochs=1.0))
  assert "seed 1: stopped at step 120, the baseline at step 200" in md
  assert "finished runs and runs stopped after at least 1 epochs" in md
  assert aggregate.main([str(folder), "--margin=-1"]) == 2
  assert aggregate.main([str(folder), "--alpha=0.7"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 2 and "margin must be positive" in err and "Traceback" not in err
  # Loss still at ln 10 (2.30) with a top-1 above chance also counts as not trained.
  _seed_member(folder, "stuck-seed=0", 0.30, loss=2.29)
  _seed_member(folder, "stuck-seed=1", 0.31, loss=2.28)
  rows = {r["member"]: r for r in csv.DictReader(io.StringIO(aggregate.render_seeds_csv(str(folder))))}
  assert rows["stuck"]["verdict"] == "did not train"


def test_figure1_grid_chooses_each_nets_rate(tmp_path):
  root = tmp_path / "figure1_lr"
  _fig_run(root, "ours-relu-lr=0.01", [0.5, 0.6, 0.8, 0.8])            # 0.45, 0.2 → 2 epochs
  _fig_run(root, "ours-relu-lr=0.02", [0.5, 0.5, 0.6, 0.6, 0.8, 0.8])  # 0.5, 0.4, 0.2 → 3
  _fig_run(root, "ours-tanh-lr=0.01", [0.4, 0.5, 0.6, 0.6, 0.7, 0.7, 0.8, 0.8])  # → 4
  _fig_run(root, "ours-tanh-lr=0.02", [0.5, 0.5, 0.6, 0.6, 0.8, 0.8])  # → 3
  result = figure1.figure1_grid(str(root))
  entry = result["setups"]["ours"]
  assert entry["chosen"] == {"relu": "0.01", "tanh": "0.02"}
  assert entry["speedup"]["ratio"] == pytest.approx(1.5)
  assert (root / "figure1.png").exists() and "speed-up 1.5x (3 vs 2 epochs)" in (root / "figure1.md").read_text()
  assert figure1.main([str(root)]) == 0


def test_provenance_is_read_from_the_records(tmp_path):
  folder = tmp_path / "s"
  _seed_member(folder, "baseline-seed=0", 0.7, machine={"description": "one H200, 16 CPU cores", "date": "2026-11-27"})
  _seed_member(folder, "up-seed=0", 0.72, machine=dict(H200, device_count=8))
  _seed_member(folder, "old-seed=0", 0.71)
  members, _ = aggregate.load_members(str(folder))
  assert aggregate.recorded_provenance(members) == (
      "Machine: 8× NVIDIA H200, AMD EPYC 9654; one H200, 16 CPU cores (1 run(s) without machine.json). "
      "Date: 2026-11-27.")
  assert aggregate.recorded_provenance([m for m in members if m.name == "old-seed=0"]).startswith(
      "Machine and date: not recorded")
  assert aggregate.recorded_provenance([m for m in members if m.name == "up-seed=0"]) == (
      "Machine: 8× NVIDIA H200, AMD EPYC 9654. Date: 2026-11-27.")


def test_records_fall_back_to_logs_and_compressed_metrics(seed_study):
  members, _ = aggregate.load_members(str(seed_study))
  pca = next(m for m in members if m.name == "pca_off-seed=0")
  assert not (seed_study / "runs" / pca.name / "metrics.jsonl").exists()
  assert pca.eval_curve == [(2.0, 0.71)] and pca.lr_curve == [(2.0, 0.1)]
  bare = aggregate.MemberResult("x", "", {"epoch": 3.0}, [(1.0, 2.5), (3.0, 1.25)], [(3.0, 0.5)])
  assert bare.finished == ("epoch", 3.0) and bare.train_loss == 1.25
  assert aggregate.MemberResult("y", "", None, [], [(4.0, 0.5)]).finished == ("epoch", 4.0)
  assert aggregate.MemberResult("z", "", None, [], []).finished is None


def test_sign_against_the_paper_only_when_resolved(tmp_path):
  folder = tmp_path / "s"
  for seed, (b, up, down) in enumerate([(70, 72, 69), (72, 74, 72.5), (71, 73, 70), (73, 75.5, 73)]):
    for name, v in (("baseline", b), ("up", up), ("down", down)):
      _seed_member(folder, f"{name}-seed={seed}", v / 100)
  (folder / "sweep.json").write_text(json.dumps({"baseline": "baseline", "members": [
      {"name": f"{n}-seed={s}", "paper": {"top1": -0.4}} for s in range(4) for n in ("baseline", "up", "down")]}))
  rows = {r["member"]: r for r in csv.DictReader(io.StringIO(aggregate.render_seeds_csv(str(folder))))}
  assert rows["up"]["verdict"] == "resolved" and rows["up"]["sign"] == "opposite"
  assert rows["down"]["verdict"] == "unresolved" and rows["down"]["sign"] == ""
  _seed_member(tmp_path / "plain", "baseline", 0.7)
  with pytest.raises(FileNotFoundError, match="no seed table"):
    aggregate.render_seeds_md(str(tmp_path / "plain"))


def test_a_baseline_seed_that_did_not_train_leaves_every_pair(tmp_path):
  folder = tmp_path / "s"
  for seed, (b, m) in enumerate([(70, 68), (10, 69), (71, 70), (72, 70)]):
    _seed_member(folder, f"baseline-seed={seed}", b / 100)
    _seed_member(folder, f"lrn_off-seed={seed}", m / 100)
  rows = {r["member"]: r for r in csv.DictReader(io.StringIO(aggregate.render_seeds_csv(str(folder))))}
  assert rows["baseline"]["not_counted"] == "seed 1: did not train" and rows["baseline"]["n"] == "3"
  # Pairs over seeds 0, 2, 3 only: d = −2, −1, −2.
  assert rows["lrn_off"]["n"] == "3" and rows["lrn_off"]["d_top1"] == "-1.67"
