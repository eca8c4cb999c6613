"""Tables and plots from hand-made member folders; Figure 1 numbers from hand-made logs."""

import csv
import json

import pytest

from experiments import aggregate, figure1


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
  assert "Machine:" in text and "`python -m experiments.sweep x`" in text
  assert "| lrn_off |" in text and "-1.50" in text
  with open(csv_path) as f:
    rows = list(csv.DictReader(f))
  assert [r["member"] for r in rows] == ["baseline", "lrn_off", "half"]  # never_started is left out
  assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and (out / "curves.png").stat().st_size > 5000


def test_effects_chart_seed_noise_and_paper(sweep_dir, tmp_path):
  members, baseline = aggregate.load_members(str(sweep_dir))
  # 'half' differs from the baseline only in its seed: it sets the noise band, not a bar.
  assert [m.name for m in aggregate.seed_replicas(members, baseline)] == ["half"]
  assert aggregate.seed_noise(members, baseline) == pytest.approx(30.0)
  paths = aggregate.aggregate(str(sweep_dir), str(tmp_path / "out"))
  assert paths[-1].endswith("effects.png")
  assert open(paths[-1], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
  # Only a baseline: nothing to chart, no file.
  only = [m for m in members if m.name == baseline]
  assert not aggregate.plot_effects(only, baseline, str(tmp_path / "none.png"))
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


def _seed_member(folder, name, top1, epoch=2.0, done=True):
  d = folder / name
  d.mkdir(parents=True)
  (d / "summary.json").write_text(json.dumps({"done": done, "epoch": epoch, "eval": {"top1": top1, "top5": 0.9}}))
  (d / "metrics.jsonl").write_text(json.dumps({"step": 10, "epoch": epoch, "eval/top1": top1,
                                               "train/loss": 1.0, "train/learning_rate": 0.1}) + "\n")


def test_seed_statistics_band_and_verdicts(tmp_path):
  """baseline {70, 72}, lrn_off {66, 68}, pca_off {71} and one stopped run: hand-computed numbers."""
  folder = tmp_path / "abl"
  for name, top1 in [("baseline-seed=0", 0.70), ("baseline-seed=1", 0.72), ("lrn_off-seed=0", 0.66),
                     ("lrn_off-seed=1", 0.68), ("pca_off-seed=0", 0.71)]:
    _seed_member(folder, name, top1)
  _seed_member(folder, "pca_off-seed=1", 0.10, epoch=1.0, done=False)
  (folder / "sweep.json").write_text(json.dumps({"baseline": "baseline", "members": [
      {"name": n, "paper": ({"top1": -1.4} if n.startswith("lrn_off") else {"top1": 1.0} if n.startswith("pca") else None)}
      for n in ["baseline-seed=0", "lrn_off-seed=0", "pca_off-seed=0", "baseline-seed=1", "lrn_off-seed=1",
                "pca_off-seed=1"]]}))
  written = aggregate.aggregate(str(folder), str(tmp_path / "out"))
  assert any(p.endswith("seeds.md") for p in written) and any(p.endswith("effects_seeds.png") for p in written)
  rows = {r["member"]: r for r in csv.DictReader(open(tmp_path / "out" / "seeds.csv"))}
  # Each pair has sd √2 ≈ 1.41; pooled s = √2 over 2 dof; band = 2·√2·√(1/2 + 1/2) ≈ 2.83.
  assert rows["baseline"]["top1"] == "71.00 ± 1.41" and rows["baseline"]["seeds"] == "0,1"
  assert rows["lrn_off"]["d_top1"] == "-4.00" and rows["lrn_off"]["band"] == "±2.83"
  assert rows["lrn_off"]["resolved"] == "yes" and rows["lrn_off"]["sign"] == "matches"
  # pca_off: one counted seed (the other stopped at epoch 1); Δ = 0, band 2·√2·√(1 + 1/2) ≈ 3.46.
  assert rows["pca_off"]["seeds"] == "0" and "seed 1: stopped at epoch 1" in rows["pca_off"]["not_counted"]
  assert rows["pca_off"]["band"] == "±3.46" and rows["pca_off"]["resolved"] == "no"
  assert rows["pca_off"]["sign"] == "unresolved"
  # Counting runs stopped after enough epochs: pca_off's seed 1 now counts.
  groups = aggregate.seed_groups(aggregate.load_members(str(folder))[0], min_epochs=1.0)
  assert sorted(next(g for g in groups if g.name == "pca_off").runs) == [0, 1]


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
