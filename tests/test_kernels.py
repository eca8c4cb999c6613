"""The kernels command: colour-specificity scores, tower summaries, kernel files and checkpoints, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from alexnet_jax import cli
from alexnet_jax.inspect import kernels
from alexnet_jax.inspect import pictures


def grey_kernels(n: int, rng: np.random.Generator, size: int = 11) -> np.ndarray:
  """HWIO kernels whose three colour planes are equal (luminance only)."""
  return np.repeat(rng.normal(size=(size, size, 1, n)), 3, axis=2).astype(np.float32)


def opponent_kernels(n: int, rng: np.random.Generator, size: int = 11) -> np.ndarray:
  """HWIO kernels whose colour planes sum to zero at every pixel (red against green)."""
  x = rng.normal(size=(size, size, 1, n))
  return np.concatenate([x, -x, np.zeros_like(x)], axis=2).astype(np.float32)


def two_towers(colour_tower: int, rng: np.random.Generator, n: int = 48) -> np.ndarray:
  """96 kernels: tower `colour_tower` colour-opponent plus a little grey, the other grey plus a little colour."""
  grey = grey_kernels(n, rng) + 0.1 * opponent_kernels(n, rng)
  colour = opponent_kernels(n, rng) + 0.2 * grey_kernels(n, rng)
  return np.concatenate([colour, grey] if colour_tower == 0 else [grey, colour], axis=3)


def test_score_separates_a_grey_kernel_from_a_colour_one():
  rng = np.random.default_rng(0)
  grey, colour = grey_kernels(5, rng), opponent_kernels(5, rng)
  np.testing.assert_allclose(kernels.colour_scores(grey), 0.0, atol=1e-12)
  np.testing.assert_allclose(kernels.colour_scores(colour), 1.0, atol=1e-12)
  mixed = kernels.colour_scores(rng.normal(size=(11, 11, 3, 96)))
  assert mixed.shape == (96,) and (mixed > 0.3).all() and (mixed < 0.95).all()  # about 2/3 for noise
  # A pure red blob: its grey part is a third of it, so 2/3 of its energy lies outside grey.
  red = np.zeros((3, 3, 3, 1))
  red[..., 0, 0] = 1.0
  np.testing.assert_allclose(kernels.colour_scores(red), [2 / 3])
  np.testing.assert_allclose(kernels.colour_scores(7.0 * colour), kernels.colour_scores(colour))  # scale-free
  assert kernels.colour_scores(np.zeros((3, 3, 3, 2))).tolist() == [0.0, 0.0]  # a dead kernel is not "colour"
  with pytest.raises(kernels.KernelsError, match="3 colour channels"):
    kernels.colour_scores(np.zeros((5, 5, 48, 4)))


def test_summary_finds_the_colour_tower_and_whether_it_depends_on_the_seed():
  rng = np.random.default_rng(1)
  sets = [kernels.KernelSet(f"seed{i}", f"seed{i}.npz", "conv1", two_towers(t, rng), 2)
          for i, t in enumerate((1, 1, 0))]
  summary = kernels.summarise(sets)
  assert [e["more_colour_tower"] for e in summary["sets"]] == [1, 1, 0]
  assert all(e["auc"] == 1.0 for e in summary["sets"])
  assert summary["sets"][0]["towers"][1]["median"] > 0.8 > 0.2 > summary["sets"][0]["towers"][0]["median"]
  assert summary["verdict"] == {"sets": 3, "tower_counts": [1, 2], "same_tower_every_time": False,
                                "min_auc": 1.0, "mean_auc": 1.0}
  text = kernels.format_summary(summary)
  assert "tower 0 in 1 and tower 1 in 2 of the 3" in text and "Sec. 6.1" in text
  same = kernels.summarise(sets[:2])["verdict"]
  assert same["same_tower_every_time"] and "same tower (tower 1) in all 2" in kernels.format_summary(
      kernels.summarise(sets[:2]))
  # No specialisation: both towers alike, AUC near one half.
  alike = kernels.summarise([kernels.KernelSet("x", "x", "conv1", rng.normal(size=(11, 11, 3, 96)), 2)])
  assert 0.3 < alike["sets"][0]["auc"] < 0.75


def test_auc_counts_ties_as_half():
  assert kernels.separation_auc(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == 1.0
  assert kernels.separation_auc(np.array([1.0]), np.array([1.0])) == 0.5
  assert kernels.separation_auc(np.array([0.0, 3.0]), np.array([1.0, 2.0])) == 0.5


def test_scaled_kernels_and_mosaic_shapes():
  rng = np.random.default_rng(2)
  k = rng.normal(size=(5, 5, 3, 20))
  s = pictures.scaled_kernels(k)
  assert s.shape == (20, 5, 5, 3)
  np.testing.assert_allclose(s.min(axis=(1, 2, 3)), 0.0)  # each kernel on its own range
  np.testing.assert_allclose(s.max(axis=(1, 2, 3)), 1.0)
  assert pictures.scaled_kernels(np.zeros((3, 3, 48, 4))).shape == (4, 3, 3, 3)  # not RGB: grey
  m = pictures.mosaic(s, columns=8)
  assert m.shape == (3 * 6 - 1, 8 * 6 - 1, 3)
  np.testing.assert_array_equal(m[6:11, 6:11], s[9])  # row 1, column 1


def test_npz_files_make_pictures_scores_and_the_summary(tmp_path, capsys):
  rng = np.random.default_rng(3)
  files = []
  for seed, tower in enumerate((1, 0, 1)):
    path = tmp_path / f"seed{seed}.npz"
    np.savez(path, conv1=two_towers(tower, rng))
    files.append(str(path))
  out = tmp_path / "tower_specialisation"
  assert cli.main(["kernels", f"--kernels={','.join(files)}", f"--out={out}"]) == 0
  for seed in range(3):
    for suffix in ("kernels.png", "hist.png", "scores.csv", "scores.json"):
      assert (out / f"seed{seed}_{suffix}").stat().st_size > 100
  assert (out / "hist_all.png").is_file()
  scores = json.loads((out / "seed1_scores.json").read_text())
  assert len(scores["scores"]) == 96 and scores["tower"][:48] == [0] * 48 and scores["towers"] == 2
  assert np.mean(scores["scores"][:48]) > 0.8 > 0.2 > np.mean(scores["scores"][48:])
  csv = (out / "seed0_scores.csv").read_text().splitlines()
  assert csv[0] == "kernel,tower,score" and len(csv) == 97
  summary = json.loads((out / "summary.json").read_text())
  assert [e["more_colour_tower"] for e in summary["sets"]] == [1, 0, 1]
  md = (out / "summary.md").read_text()
  assert "which tower it is varies" in md and "GPU 2 are largely color-specific" in md and "seed0_kernels.png" in md
  from PIL import Image
  width, height = Image.open(out / "seed0_kernels.png").size
  assert width > 400 and height > 200


def test_npz_layouts_and_their_mistakes(tmp_path, capsys):
  rng = np.random.default_rng(4)
  flat = tmp_path / "converted.npz"  # the layout torch_convert --out writes
  np.savez(flat, **{"params/conv1/kernel": grey_kernels(64, rng), "params/conv1/bias": np.zeros(64),
                    "params/conv2/kernel": rng.normal(size=(5, 5, 64, 192)), "params/fc/kernel": np.zeros((9, 10))})
  ks = kernels.from_npz(str(flat), towers=1)
  assert ks.layer == "conv1" and ks.kernel.shape == (11, 11, 3, 64) and ks.rgb
  assert kernels.from_npz(str(flat), layer="conv2", towers=2).kernel.shape == (5, 5, 64, 192)
  with pytest.raises(kernels.KernelsError, match="conv1, conv2"):
    kernels.from_npz(str(flat), layer="conv9")
  odd = tmp_path / "odd.npz"
  np.savez(odd, k=rng.normal(size=(3, 3, 3, 5)))
  with pytest.raises(kernels.KernelsError, match="5 kernels do not split into 2"):
    kernels.from_npz(str(odd))
  (tmp_path / "text.npz").write_text("not an archive")
  for argv, message in ((["--kernels=" + str(tmp_path / "missing.npz"), f"--out={tmp_path}/o"], "no such file"),
                        (["--kernels=" + str(tmp_path / "text.npz"), f"--out={tmp_path}/o"], "not a readable .npz"),
                        ([f"--kernels={flat}", "--layer=fc", f"--out={tmp_path}/o"], "not a convolution"),
                        ([f"--kernels={odd}", "--towers=-1", f"--out={tmp_path}/o"], "must be positive")):
    assert kernels.run(argv) == 2, argv
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_kernels_of_a_trained_run(trained_run, tmp_path, capsys):
  wd = trained_run.workdir
  (latest,) = kernels.from_workdir(str(wd))
  expected = np.asarray(trained_run.state.params["conv1"]["kernel"])
  np.testing.assert_array_equal(latest.kernel, expected)  # only this array is read, with no config
  assert latest.towers == 2 and latest.label == f"step_{trained_run.summary['step']}"
  steps = sorted(int(p.name) for p in (wd / "checkpoints").iterdir() if p.name.isdigit())
  assert [k.label for k in kernels.from_workdir(str(wd), steps="all")] == [f"step_{s}" for s in steps]
  conv2 = kernels.from_workdir(str(wd), layer="conv2")[0]
  assert conv2.kernel.shape[2] * 2 == expected.shape[3] and not conv2.rgb  # a tower's input channels
  out = tmp_path / "k"
  assert cli.main(["kernels", f"--workdir={wd}", "--steps=all", f"--out={out}"]) == 0
  assert {p.name for p in out.glob("step_*_kernels.png")} == {f"step_{s}_kernels.png" for s in steps}
  assert (out / "summary.md").is_file() and (out / "hist_all.png").is_file() == (len(steps) > 1)
  assert not (wd / "kernels").exists()  # nothing written into the run without --out


def test_workdir_mistakes_are_one_line(trained_run, tmp_path, capsys):
  wd = trained_run.workdir
  empty = tmp_path / "empty"
  empty.mkdir()
  cases = ((["--workdir=" + str(tmp_path / "nope")], "is not a folder"),
           ([f"--workdir={empty}"], "No checkpoint"),
           ([f"--workdir={wd}", "--steps=7"], "no checkpoint for step(s) [7]"),
           ([f"--workdir={wd}", "--steps=last"], "give latest, all"),
           ([f"--workdir={wd}", "--layer=fc6"], "its convolutions are: conv1, conv2, conv3, conv4, conv5"))
  for argv, message in cases:
    assert kernels.run([*argv, f"--out={tmp_path}/o"]) == 2, argv
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
  with pytest.raises(SystemExit):  # argparse: neither or both sources
    kernels.main([f"--out={tmp_path}/o"])
  copy = tmp_path / "copy"
  shutil.copytree(wd, copy)
  (copy / "config.json").unlink()
  assert kernels.from_workdir(str(copy))[0].towers == 1  # without the run's config: one block


def test_several_steps_are_drawn_side_by_side(tmp_path):
  rng = np.random.default_rng(5)
  sets = [kernels.KernelSet(f"step_{s}", f"run step {s}", "conv1", two_towers(1, rng, n=8), 2) for s in (10, 20)]
  written = kernels.write_outputs(sets, str(tmp_path))
  assert str(tmp_path / "kernels_over_steps.png") in written and str(tmp_path / "hist_all.png") in written
  assert "kernels_over_steps.png" in (tmp_path / "summary.md").read_text()
