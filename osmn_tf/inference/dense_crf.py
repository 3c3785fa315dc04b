"""The release's dense-CRF post-processing of one object's mask (`--crf_postprocessing`, SPEC 8.5).

A fully connected CRF with two labels (background, object) on the frame at
the working size: the unary term trusts the thresholded mask with
probability `gt_prob`, a Gaussian pairwise term smooths, and a bilateral one
snaps the mask to colour edges; a few mean-field iterations, then the most
likely label per pixel. It runs on `pydensecrf` (the maintained `pydensecrf2`
fork of Krähenbühl's permutohedral-lattice code, the `crf` extra), the
implementation the release called, so the results are the release's.
"""
import dataclasses

import numpy as np

from osmn_tf.utils.extras import require


@dataclasses.dataclass(frozen=True)
class DenseCRFConfig:
    """The CRF's parameters; the defaults are the release's (`Dataset.crf_processing`).

    Attributes:
        gt_prob: how far the unary term trusts the given mask (energy
            `-ln gt_prob` for its label, `-ln (1 - gt_prob)` for the other).
        gaussian_sxy, gaussian_compat: the smoothness term's spatial standard
            deviation (pixels) and weight.
        bilateral_sxy, bilateral_srgb, bilateral_compat: the appearance term's
            spatial and colour standard deviations and weight.
        iterations: mean-field iterations.
    """

    gt_prob: float = 0.9
    gaussian_sxy: float = 3
    gaussian_compat: float = 3
    bilateral_sxy: float = 40
    bilateral_srgb: float = 5
    bilateral_compat: float = 10
    iterations: int = 5

    def __post_init__(self):
        if not 0.5 < self.gt_prob < 1:
            raise ValueError(f"DenseCRFConfig.gt_prob must lie in (0.5, 1), got {self.gt_prob!r}")
        for name in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DenseCRFConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise ValueError(f"DenseCRFConfig.iterations must be an integer >= 1, got {self.iterations!r}")


def dense_crf(image, mask, config=None, return_marginals=False):
    """The release's CRF on one object's mask: a refined 0/1 mask.

    Args:
        image: `uint8` `[H, W, 3]` RGB, the frame at the size of `mask` (the
            release uses the frame at the working size, not mean-subtracted).
        mask: `[H, W]` 0/1 (bool or integers): the object's thresholded mask.
        config: a `DenseCRFConfig` (default: the release's parameters).
        return_marginals: also return the mean-field marginals `float32 [2, H, W]`
            (background, object).

    Returns:
        `uint8` `[H, W]` 0/1, and the marginals if asked.

    Raises `osmn_tf.utils.extras.MissingExtraError` without the `crf` extra.
    """
    config = config or DenseCRFConfig()
    image, mask = _checked(image, mask)
    densecrf = require("pydensecrf.densecrf", "crf", "the dense CRF")
    utils = require("pydensecrf.utils", "crf", "the dense CRF")
    height, width = mask.shape
    crf = densecrf.DenseCRF2D(width, height, 2)
    # Hard labels: -ln gt_prob for the given label, -ln (1 - gt_prob) for the other.
    crf.setUnaryEnergy(utils.unary_from_labels(mask, 2, gt_prob=config.gt_prob, zero_unsure=False))
    crf.addPairwiseGaussian(sxy=config.gaussian_sxy, compat=config.gaussian_compat)
    crf.addPairwiseBilateral(sxy=config.bilateral_sxy, srgb=config.bilateral_srgb, rgbim=image,
                             compat=config.bilateral_compat)
    marginals = np.asarray(crf.inference(int(config.iterations)), np.float32).reshape(2, height, width)
    # The background wins ties, as numpy's argmax over (background, object) in the release.
    refined = (marginals[1] > marginals[0]).astype(np.uint8)
    return (refined, marginals) if return_marginals else refined


def _checked(image, mask):
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W] 0/1, got shape {mask.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but image is "
                         f"{image.shape[1]}x{image.shape[0]}: they must be the same size")
    if mask.dtype != np.bool_ and not np.isin(mask, (0, 1)).all():
        raise ValueError(f"mask must hold 0 and 1 only, got values {np.unique(mask)[:5].tolist()}...")
    # pydensecrf takes the image's buffer as a writable C-contiguous memoryview: a read-only array (numpy's view
    # of a PIL image) or a slice is copied.
    return np.require(image, requirements=("C", "W")), mask.astype(np.uint8)
