"""Bilateral filter (OpenCV) on each Bayer plane, in the variance-stabilised domain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.noise_model import NoiseProfile
from methods.toolkit.vst import denoise_stabilised
from methods.base import Method, NoisyRaw, above, at_least, param
from methods.registry import register_method


def bilateral_packed(packed: np.ndarray, profile: NoiseProfile, sigma_color: float, sigma_space: float,
                     diameter: int) -> np.ndarray:
    """``(h, w, 4)`` float32 noisy normalised image with noise ``profile`` -> the denoised ``(h, w, 4)``
    float32 in [0, 1]. Parameters as declared on ``Bilateral``."""
    import cv2

    def filter_planes(stabilised: np.ndarray) -> np.ndarray:
        # (h, w, 4) float32 with unit noise std -> filtered (h, w, 4) float32, plane by plane
        planes = cv2.split(stabilised)
        return cv2.merge([cv2.bilateralFilter(plane, diameter, sigma_color, sigma_space) for plane in planes])

    # float32 throughout: OpenCV's bilateral filter works in float32
    return denoise_stabilised(packed, profile, filter_planes, dtype=np.float32)


@register_method("bilateral")
@dataclass
class Bilateral(Method):
    """Bilateral filter (OpenCV) on each same-colour Bayer plane after a variance-stabilising transform."""

    kind = "classical"
    requires = {"cv2": "opencv-python-headless"}
    packed_function = staticmethod(bilateral_packed)
    wrapped_library = "cv2.bilateralFilter"
    # OpenCV silently replaces a sigma <= 0 by 1 and a d <= 0 by one derived from sigma_space
    sigma_color: float = param(2.25, "range (intensity) sigma, in units of the noise standard deviation",
                               low=1.0, high=4.0, valid=above(0))
    sigma_space: float = param(1.5, "spatial sigma, in packed pixels", low=0.75, high=3.0, valid=above(0))
    diameter: int = param(9, "neighbourhood diameter, in packed pixels (OpenCV's d; 1 = no filtering)",
                          low=3, high=15, valid=at_least(1))

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        return bilateral_packed(raw.packed, raw.noise, **self.param_values())

    def library_call(self, packed: np.ndarray, sigma: float) -> np.ndarray:
        """OpenCV's bilateral filter on each float32 plane as it is (no stabilisation), range sigma
        ``sigma_color`` noise stds -> ``(h, w, 4)`` float32."""
        import cv2

        return np.stack([cv2.bilateralFilter(np.ascontiguousarray(packed[..., k]), self.diameter,
                                             self.sigma_color * sigma, self.sigma_space)
                         for k in range(packed.shape[-1])], axis=-1)
