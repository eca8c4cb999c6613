"""Views per batch and the protocol checks, where a small change would still pass the broader tests."""

from __future__ import annotations

import pytest

from alexnet_jax.errors import ConfigError
from alexnet_jax.eval import views as eval_views
from tests.conftest import eval_config


def test_images_per_batch_from_an_explicit_eval_batch_size():
  c = eval_config()
  c.eval.batch_size, c.eval_batch_size = 1, 64
  assert eval_views.images_per_batch(c, "center") == 1
  c.eval.batch_size = 8
  assert eval_views.images_per_batch(c, "144crop", multiple=4) == 8
  c.eval.batch_size = 6
  with pytest.raises(ConfigError, match=r"^config\.eval\.batch_size=6 must be a multiple of 4 \(devices × processes\)\.$"):
    eval_views.images_per_batch(c, "center", multiple=4)


def test_images_per_batch_is_a_whole_number():
  c = eval_config()
  c.eval_batch_size = 255
  got = eval_views.images_per_batch(c, "10crop")
  assert got == 25 and type(got) is int
  got = eval_views.images_per_batch(c, "center", multiple=2)
  assert got == 254 and type(got) is int


def test_view_counts_and_names():
  c = eval_config()
  c.eval.scales, c.eval.googlenet_scales = (256, 384), (256, 288, 320)
  assert [eval_views.num_views(p, c.eval) for p in eval_views.PROTOCOLS] == [1, 10, 20, 108]
  assert eval_views.check_protocols(["10crop", "center"]) == ("10crop", "center")
  with pytest.raises(ConfigError, match=r"^Unknown evaluation protocol\(s\) \(none given\); choose from center, "
                                        r"10crop, multiscale, 144crop \(config\.eval\.protocols or --protocols\)\.$"):
    eval_views.check_protocols([])
  with pytest.raises(ConfigError, match=r"^Unknown evaluation protocol\(s\) \['5crop'\]; choose from"):
    eval_views.check_protocols(["center", "5crop"])


def test_scaled_sizes_round_and_refuse_empty_or_small_scales():
  assert eval_views.scaled_sizes((224, 225), 100) == (100, 100)  # 100.4 rounds down
  assert eval_views.scaled_sizes((230,), 100) == (103,)  # 102.7 rounds up
  with pytest.raises(ConfigError, match=r"^Test scales \(\) \(→ \(\) at image_size 32\) must be non-empty and each "
                                        r"≥ 224 \(the crop they are given for\)\.$"):
    eval_views.scaled_sizes((), 32)
  assert eval_views.scaled_sizes((224,), 32) == (32,)  # equal to the crop is allowed


def test_the_view_makers_give_static_shapes_and_check_the_resize():
  import tensorflow as tf
  c = eval_config()
  fn = tf.function(eval_views.make_preprocess("10crop", c), input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
  assert fn.get_concrete_function().structured_outputs.shape.as_list() == [10, 32, 32, 3]
  c.input.resize_size = 32  # equal to the crop: allowed
  assert eval_views.make_preprocess("10crop", c)(tf.zeros([40, 48, 3], tf.uint8)).shape == (10, 32, 32, 3)
  c.input.resize_size = 30
  with pytest.raises(ConfigError, match=r"^10crop needs config\.input\.resize_size \(30\) ≥ image_size \(32\)\.$"):
    eval_views.make_preprocess("10crop", c)
