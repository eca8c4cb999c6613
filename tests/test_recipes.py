"""Each recipe config behind the converged results takes a few real training steps on the embedded data.

The configs are the ones the result sweeps run (experiments/sweeps/imagenette_leaderboard.py,
alexnet_imagenette.py, figure1_lr.py), shrunk only in size (width, batch, images, steps) so a
CPU runs them in seconds; every recipe switch (ResNet-D, the training refinements, unit-scale
inputs with scaled LRN, the 2012 CIFAR setup) stays as the sweep sets it.
"""

import math

import pytest

from alexnet_jax import config_files, train
from alexnet_jax.configs import common

# The session's embedded data and its 72² store (tests/conftest.py's trained run uses them too),
# so no test here renders or prepares data of its own.
SHARED_DATA = {"embedded_train_size": 2048, "embedded_eval_size": 256, "input.store_size": 72}

RECIPES = {
    # configs/imagenette.py is ResNet-D-50: depth 18 here keeps the CPU compile short (the
    # bottleneck ResNet-D is pinned by tests/test_resnet.py's parameter count).
    "imagenette": ("configs/imagenette.py:smoke", {"model.depth": 18}),
    "alexnet_imagenette": ("configs/alexnet.py:init=he_in,inputs=unit,res=112,data=embedded",
                           {"model.width": 0.25, "model.fc_dim": 64, "input.pipeline": "store",
                            "embedded_train_size": 64, "embedded_eval_size": 32, "input.store_size": 0}),
    "figure1_2012": ("configs/cifar_cnn.py:smoke,norm=mean,init=paper,lr=0.001", {"input.pipeline": "store"}),
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_trains_a_few_steps(name, tmp_path):
  spec, overrides = RECIPES[name]
  c = config_files.load(spec)
  c.unlock()
  c.update_from_flattened_dict({**SHARED_DATA, "batch_size": 16, "eval_batch_size": 64, "num_train_steps": 3,
                                "log_every_steps": 1, "eval_every_epochs": 1000.0, "async_checkpoints": False,
                                **overrides})
  c.lock()
  state, summary = train.train_and_evaluate(c, str(tmp_path / name))
  assert int(state.step) == 3 and summary["done"]
  assert math.isfinite(summary["eval"]["loss"]) and 0.0 <= summary["eval"]["top1"] <= 1.0


def test_recipe_switches_are_what_the_sweeps_run():
  c = config_files.load("configs/imagenette.py:data=/data/imagenette")
  assert (c.model.name, c.model.depth, c.model.stem, c.model.avg_down, c.model.zero_init_residual) == \
      ("resnet", 50, "deep", True, True)
  assert (c.schedule.name, c.schedule.warmup_epochs, c.label_smoothing) == ("cosine", 1.0, 0.1)
  assert not c.optimizer.decay_biases_and_norms and c.optimizer.nesterov
  assert (c.batch_size, c.input.image_size, c.input.resize_size, c.schedule.base_lr) == (64, 128, 128, 0.1)
  assert config_files.load("configs/imagenette.py:batch=256").schedule.base_lr == pytest.approx(0.4)
  a = config_files.load("configs/alexnet.py:init=he_in,inputs=unit,res=112")
  assert a.model.lrn_alpha == pytest.approx(1e-4 * 57.6 ** 2) and a.input.std_rgb[0] > 50
  assert (a.input.image_size, a.input.resize_size, a.model.init_scheme) == (112, 128, "he_in")
  p = config_files.load("configs/alexnet.py:inputs=pixel")
  assert p.model.lrn_alpha == 1e-4 and p.input.std_rgb == (1.0, 1.0, 1.0)
  # quick mode and an explicit inputs=unit give the same α (applied twice, not compounded)
  assert config_files.load("configs/alexnet.py:smoke,inputs=unit").model.lrn_alpha == pytest.approx(1e-4 * 57.6 ** 2)
  f = config_files.load("configs/cifar_cnn.py:norm=mean,init=paper")
  assert f.input.std_rgb == (1.0, 1.0, 1.0) and f.model.init_scheme == "paper"
  r = config_files.load("configs/resnet.py:depth=50,d,tricks,sched=step")
  assert r.model.stem == "deep" and r.model.avg_down and r.label_smoothing == 0.1
  assert r.schedule.name == "step"  # an explicit argument wins over `tricks`


def test_small_data_recipe_keeps_the_paper_and_counts_warmup_and_plateau_in_steps():
  """configs/alexnet.py:small (the recipe of experiments/sweeps/alexnet_paper.py): everything the paper
  sets stays; only the warm-up and the plateau rule's patience and earliest cut are in steps."""
  from alexnet_jax.configs import alexnet, validate
  c = config_files.load("configs/alexnet.py:small,res=112,data=embedded")
  validate.check(c)
  m = c.model
  assert (m.init_scheme, m.init_std, m.towers, m.half_kernels) == ("paper", 0.01, 2, False)
  assert (m.lrn, m.lrn_size, m.lrn_k, m.lrn_alpha, m.lrn_beta) == (True, 5, 2.0, 1e-4, 0.75)
  assert (m.pool_window, m.pool_stride, m.dropout, m.act) == (3, 2, 0.5, "relu")
  # Mean-subtracted 0..255 inputs: the ImageNet mean, no division.
  assert c.input.std_rgb == (1.0, 1.0, 1.0) and c.input.mean_rgb == common.IMAGENET_MEAN_RGB
  assert (c.input.image_size, c.input.resize_size, c.input.pca_lighting) == (112, 128, 0.1)
  o, s = c.optimizer, c.schedule
  assert (o.name, o.momentum, o.weight_decay, o.nesterov) == ("sgd", 0.9, 5e-4, False)
  assert (s.name, s.base_lr, s.factor, s.max_reductions) == ("plateau", 0.01, 0.1, 3)
  assert (s.warmup_steps, s.patience_steps, s.first_cut_step) == (
      alexnet.SMALL_WARMUP_STEPS, alexnet.SMALL_PATIENCE_STEPS, alexnet.SMALL_FIRST_CUT_STEP) == (370, 1000, 2000)
  # Without `small` the recipe is the paper's epochs: no warm-up, patience in evaluations.
  p = config_files.load("configs/alexnet.py")
  assert (p.schedule.warmup_steps, p.schedule.patience_steps, p.schedule.first_cut_step) == (0, 0, 0)
  assert p.to_dict()["model"] == {**c.to_dict()["model"]}
  # The initial weights and biases the model draws (conv1 std 0.01; biases 1 in conv2, 4, 5, fc6, 7).
  import jax
  import numpy as np
  from alexnet_jax import models
  model = models.build_model(m, 10)

  # model.init's draws, compiled as one program that returns only what is checked: XLA then skips
  # the forward pass and drawing the other 23 M weights (run eagerly, the init took 9 s of CPU).
  def drawn(key):
    params = model.init(key, np.zeros((1, 112, 112, 3), np.float32))["params"]
    return params["conv1"]["kernel"], {k: v["bias"] for k, v in params.items()}

  conv1, biases = jax.jit(drawn)(jax.random.key(0))
  assert abs(float(conv1.std()) - 0.01) < 5e-4
  assert {k for k, b in biases.items() if float(b.mean()) == 1.0} == {"conv2", "conv4", "conv5", "fc6", "fc7"}

