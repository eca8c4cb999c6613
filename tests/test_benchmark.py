"""`experiments.benchmark`: the small nets it times are the quick-mode nets, in JAX and in PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alexnet_jax import models
from alexnet_jax.configs import alexnet as alexnet_config
from alexnet_jax.configs import cifar_cnn as cifar_cnn_config
from alexnet_jax.configs import resnet as resnet_config


@pytest.mark.parametrize("name,config_module,arg", [("alexnet_quick", alexnet_config, "smoke"),
                                                    ("cifar_cnn", cifar_cnn_config, "smoke"),
                                                    ("resnet18_quick", resnet_config, "depth=18,smoke")])
def test_benchmark_small_nets_are_the_quick_mode_nets(name, config_module, arg):
  import torch
  from experiments import benchmark
  spec = benchmark.SPECS[name]
  config = config_module.get_config(arg)
  assert (spec.batch, spec.res, spec.classes) == (config.batch_size, config.input.image_size, 10)
  ours = models.build_model(benchmark.Cfg(spec.model_cfg), spec.classes, jnp.float32)
  quick = models.build_model(config.model, spec.classes, jnp.float32)
  assert repr(ours) == repr(quick)  # every field of the network, defaults included
  shapes = jax.eval_shape(lambda: ours.init(jax.random.key(0), jnp.zeros((1, spec.res, spec.res, 3))))
  n_jax = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"]))
  twin = benchmark.torch_model(name, spec.res)
  assert sum(p.numel() for p in twin.parameters()) == n_jax  # the same network in PyTorch
  assert twin(torch.zeros(2, 3, spec.res, spec.res)).shape == (2, spec.classes)
