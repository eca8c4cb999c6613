"""The train augmentation, declared once: what both input paths crop, flip, light and normalise.

`TrainAugment.from_config(config.input)` is the one reading of the augmentation fields of a
config. The streaming path (augment.py, TensorFlow on the host) and the store path
(device_augment.py, JAX on the device) both take their settings from it and from nothing
else, so the two cannot drift apart. The defaults live in `configs/common.base_config()`
only, and `configs/validate.py` checks the fields (and refuses what a path cannot honour)
before anything runs; nothing here or downstream re-checks them or supplies defaults.

`crop_region` says where `random` crops may lie: `center_square`, the central square of the
short-side-resized image (the 2012 paper's geometry), or `full`, anywhere in it. A prepared
store keeps only that central square of each image, so the store path honours
`center_square`, and validate.py refuses `full` with `pipeline=store` for random crops.

Pure Python: importing it loads neither TensorFlow nor JAX.
"""

from __future__ import annotations

import dataclasses

CROPS = ("random", "inception", "center")
REGIONS = ("full", "center_square")


@dataclasses.dataclass(frozen=True)
class TrainAugment:
  """One train augmentation: crop, flip, PCA lighting and normalisation, in that order."""

  image_size: int                        # I: the crop fed to the network
  resize_size: int                       # R: the short side the crop is cut from
  crop: str                              # random | inception | center
  region: str                            # random crops: full | center_square
  min_area: float                        # inception crops: smallest area fraction
  aspect_range: tuple[float, float]      # inception crops: width/height range
  flip: bool                             # mirror left-right with probability 1/2
  pca_sigma: float                       # σ of the PCA lighting coefficients; 0 turns lighting off
  pca_eigval: tuple[float, float, float]  # eigenvalues of the 0..1-scale RGB covariance
  pca_eigvec: tuple[tuple[float, float, float], ...]  # its eigenvectors (columns)
  mean_rgb: tuple[float, float, float]   # 0..255 scale
  std_rgb: tuple[float, float, float]

  @classmethod
  def from_config(cls, input_cfg) -> "TrainAugment":
    """The augmentation `config.input` describes (every field must be present)."""
    return cls(
        image_size=int(input_cfg.image_size),
        resize_size=int(input_cfg.resize_size),
        crop=str(input_cfg.train_crop),
        region=str(input_cfg.crop_region),
        min_area=float(input_cfg.inception_min_area),
        aspect_range=tuple(map(float, input_cfg.inception_aspect_range)),
        flip=bool(input_cfg.flip),
        pca_sigma=float(input_cfg.pca_lighting),
        pca_eigval=tuple(map(float, input_cfg.pca_eigval)),
        pca_eigvec=tuple(tuple(map(float, row)) for row in input_cfg.pca_eigvec),
        mean_rgb=tuple(map(float, input_cfg.mean_rgb)),
        std_rgb=tuple(map(float, input_cfg.std_rgb)),
    )

  @property
  def lighting(self) -> bool:
    return self.pca_sigma > 0

