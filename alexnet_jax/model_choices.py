"""The values each model field may take, declared once: plain Python, no Flax.

The model modules build from these tables (`models/vgg.py` its stages, `models/resnet.py` its
blocks, `models/layers.py` its activations and initialisers); the config-string arguments
(`configs/<family>.py`), validation (`configs/validate.py`) and the weight converters derive
their choices from them, without loading the models.
"""

from __future__ import annotations

ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid")            # layers.activation
INIT_SCHEMES = ("paper", "he", "he_in", "lecun", "xavier")   # layers.kernel_init

# VGG: convs per stage for each depth (channels 64, 128, 256, 512, 512).
VGG_STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}

# ResNet: depth → (block type, blocks per stage), ResNet paper Table 1.
RESNET_STAGES: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

# config.model fields with a fixed set of values, by field name (every family that has the field).
FIELDS: dict[str, tuple] = {
    "act": ACTIVATIONS,
    "init_scheme": INIT_SCHEMES + ("torchvision",),  # torchvision: GoogLeNet's own initialiser
    "variant": ("paper", "owt"),                      # AlexNet
    "towers": (1, 2),
    "remove_conv": (0, 2, 3, 4, 5),
    "pool7": ("adaptive", "flatten"),                 # VGG
    "stem": ("imagenet", "deep", "small"),            # ResNet
    "version": ("1_0", "1_1"),                        # SqueezeNet
    "branch3_kernel": (3, 5),                         # GoogLeNet
    "aux_pool": ("adaptive", "avg5s3"),
    "pool4_window": (2, 3),
}
# config.model.depth by family.
DEPTHS: dict[str, tuple[int, ...]] = {"vgg": tuple(VGG_STAGES), "resnet": tuple(RESNET_STAGES)}


def of(name: str, field: str) -> tuple | None:
  """The values `config.model.<field>` may take for family `name` (None: any of its type)."""
  return DEPTHS.get(name) if field == "depth" else FIELDS.get(field)
