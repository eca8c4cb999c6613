"""The four-layer CIFAR-10 network of AlexNet's Figure 1 (ReLU vs tanh training speed).

Krizhevsky et al. (2012), Figure 1: "A four-layer convolutional neural network with ReLUs
(solid line) reaches a 25% training error rate on CIFAR-10 six times faster than an
equivalent network with tanh neurons (dashed line). The learning rates for each network
were chosen independently to make training as fast as possible. No regularization of any
kind was employed." The network itself is a reconstruction (see
alexnet_jax/models/cifar_cnn.py). Here both nets use the SAME learning rate, so the
activation is the only difference; pass `lr=` to tune each one separately as the paper did.

Setting (matching the quoted text): no augmentation (the 32×32 image as is), no weight
decay, no dropout; SGD with momentum 0.9 and a constant rate; batch 128; per-channel
mean/std normalisation. Training error is logged five times per epoch (log_every_steps =
steps per epoch / 5 for the 50,000-image train split), so experiments/figure1.py can average
it over each epoch.

Arguments (besides those in `configs/common.py`):
  act=relu      relu | tanh  (the Figure 1 variable)
  lr=0.01       constant SGD learning rate at the recipe's batch (scaled with `batch`)
  init=lecun    weight initialiser (the same for both activations); `paper` is N(0, 0.01),
                the small Gaussian of cuda-convnet's CIFAR-10 nets
  norm=std      std: subtract the channel mean and divide by the channel std (unit-scale
                inputs); mean: subtract the mean only (the 2012 setup, inputs on the 0..255 scale)

Data: TFDS `cifar10` by default (splits train/test); an image folder laid out as
<root>/{train,test}/<class>/<image> also works: `data=<root>`.

Examples:
  python main.py --config=configs/cifar_cnn.py:act=relu
  python main.py --config=configs/cifar_cnn.py:act=tanh,data=/data/cifar10,epochs=40
  python main.py --config=configs/cifar_cnn.py:smoke   # embedded data, a minute on a CPU
"""

from alexnet_jax.configs import common

CIFAR_MEAN_RGB = (125.3, 123.0, 113.9)  # CIFAR-10 train-set channel statistics, 0..255 scale
CIFAR_STD_RGB = (63.0, 62.1, 66.7)

FAMILY_ARGS = {
    "act": common.Arg(str, "relu", "model.act", choices=("relu", "tanh")),  # the two Figure 1 curves
    "lr": common.positive(float, 0.01, "schedule.base_lr"),
    "init": common.Arg(str, "lecun", "model.init_scheme", choices=common.INIT_SCHEMES),
    "norm": common.Arg(str, "std", "input.std_rgb", choices=("std", "mean"),
                       to=lambda v, a: CIFAR_STD_RGB if v == "std" else (1.0, 1.0, 1.0)),
}



def recipe(c, args) -> None:
  """The Figure 1 setting; `config.model` holds exactly the fields of `models.cifar_cnn.CifarCNN`."""
  m = c.model
  m.name = "cifar_cnn"
  m.channels = (32, 32, 64)
  m.kernel = 5
  m.pool_window = 3
  m.pool_stride = 2
  m.act = "relu"
  m.init_scheme = "lecun"
  c.dataset = "cifar10"
  c.train_split = "train"
  c.eval_split = "test"
  c.input.image_size = 32
  c.input.resize_size = 32
  c.input.train_crop = "center"  # 32 of 32: the whole image, no augmentation
  c.input.flip = False
  c.input.pca_lighting = 0.0
  c.input.mean_rgb = CIFAR_MEAN_RGB
  c.input.std_rgb = CIFAR_STD_RGB
  c.optimizer.name = "sgd"
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 0.0  # "No regularization of any kind"
  c.schedule.name = "constant"
  c.batch_size = 128
  c.eval_batch_size = 500
  c.num_epochs = 30.0
  c.log_every_steps = 78  # 390 steps per epoch on 50,000 images: five train logs per epoch
  c.eval_every_epochs = 1.0
  c.checkpoint_every_steps = 1170  # every third epoch
  c.keep_checkpoints = 2


def smoke(c, args) -> None:
  """Quick mode: the embedded dataset rendered at CIFAR's 32×32, two short epochs."""
  c.input.image_size = 32
  c.input.resize_size = 32
  c.embedded_train_size = 2000
  c.embedded_eval_size = 500
  c.num_epochs = 2.0
  c.schedule.name = "constant"
  c.schedule.warmup_epochs = 0.0
  c.log_every_steps = 10


def get_config(arg=None):
  return common.make("cifar_cnn", arg, FAMILY_ARGS, recipe, smoke)
