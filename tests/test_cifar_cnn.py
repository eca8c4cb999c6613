"""The Figure 1 CIFAR-10 network and its config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax import models
from alexnet_jax.configs import validate
from alexnet_jax.configs import cifar_cnn


def _init(cfg, size=32, batch=2):
  model = models.build_model(cfg.model, 10)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, size, size, 3)), jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  return model, variables, x


def test_shapes_params_and_the_four_weight_layers():
  cfg = cifar_cnn.get_config("act=relu")
  model, variables, x = _init(cfg)
  params = variables["params"]
  assert sorted(params) == ["conv1", "conv2", "conv3", "fc"]
  assert params["conv1"]["kernel"].shape == (5, 5, 3, 32)
  assert params["conv3"]["kernel"].shape == (5, 5, 32, 64)
  # 32 → 16 → 8 → 4 with ceil-mode 3×3/2 pooling: fc sees 4·4·64 features.
  assert params["fc"]["kernel"].shape == (4 * 4 * 64, 10)
  n = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
  assert n == (5 * 5 * 3 * 32 + 32) + (5 * 5 * 32 * 32 + 32) + (5 * 5 * 32 * 64 + 64) + (1024 * 10 + 10)
  logits = model.apply(variables, x, train=True)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  assert "batch_stats" not in variables  # no normalisation layers, as in the Figure 1 nets


def test_activation_is_the_only_difference():
  relu_cfg, tanh_cfg = cifar_cnn.get_config("act=relu"), cifar_cnn.get_config("act=tanh")
  assert relu_cfg.model.act == "relu" and tanh_cfg.model.act == "tanh"
  a, b = relu_cfg.to_dict(), tanh_cfg.to_dict()
  differing = {k for k in a if a[k] != b[k]}
  assert differing == {"model", "name"}
  assert {k for k in a["model"] if a["model"][k] != b["model"][k]} == {"act"}
  # Same init → same parameters; different activations → different outputs.
  m1, v1, x = _init(relu_cfg)
  m2, v2, _ = _init(tanh_cfg)
  assert all(np.array_equal(p, q) for p, q in zip(jax.tree.leaves(v1), jax.tree.leaves(v2)))
  assert not np.allclose(m1.apply(v1, x), m2.apply(v2, x))


def test_figure1_defaults_and_quick_mode():
  c = cifar_cnn.get_config()
  assert c.dataset == "cifar10" and c.eval_split == "test" and c.input.image_size == 32
  assert c.optimizer.weight_decay == 0.0 and c.input.flip is False and c.input.pca_lighting == 0.0
  assert c.schedule.name == "constant" and c.batch_size == 128
  assert (50000 // c.batch_size) % c.log_every_steps == 0  # whole log intervals per epoch
  q = cifar_cnn.get_config("smoke,act=tanh")
  assert q.dataset == "embedded" and q.input.image_size == 32 and q.num_epochs <= 2
  f = cifar_cnn.get_config("data=/data/cifar10,epochs=12")
  assert f.dataset == "/data/cifar10" and f.eval_split == "test" and f.num_epochs == 12


def test_bad_arguments_are_clear():
  with pytest.raises(ValueError, match="relu, tanh"):
    cifar_cnn.get_config("act=gelu")
  with pytest.raises(ValueError, match="> 0"):
    cifar_cnn.get_config("lr=0")
  cfg = cifar_cnn.get_config()
  cfg.model.channels = (32, 0)
  with pytest.raises(ValueError, match="config.model.channels"):
    validate.check(cfg, check_data=False)


def test_one_training_step_lowers_the_loss():
  """A few SGD steps on one batch reduce its loss: the net is trainable end to end."""
  import optax
  cfg = cifar_cnn.get_config("act=relu")
  model, variables, _ = _init(cfg, size=16, batch=8)  # 16 px keeps the test quick; fc sees 2·2·64
  x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 16, 16, 3)), jnp.float32)
  y = jnp.arange(8) % 10
  params = variables["params"]
  opt = optax.sgd(0.05, momentum=0.9)
  state = opt.init(params)

  def loss_fn(p):
    return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x), y).mean()

  first = float(loss_fn(params))
  grad_fn = jax.jit(jax.grad(loss_fn))
  for _ in range(6):
    grads = grad_fn(params)
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  assert float(loss_fn(params)) < first - 0.1
