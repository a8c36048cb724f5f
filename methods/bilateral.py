"""Bilateral filter (OpenCV) on each Bayer plane, in the variance-stabilised domain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.vst import denoise_stabilised
from methods.base import Method, NoisyRaw, param
from methods.registry import register_method


@register_method("bilateral")
@dataclass
class Bilateral(Method):
    """Bilateral filter (OpenCV) on each same-colour Bayer plane after a variance-stabilising transform."""

    kind = "classical"
    requires = {"cv2": "opencv-python-headless"}
    sigma_color: float = param(2.25, "range (intensity) sigma, in units of the noise standard deviation",
                               low=1.0, high=4.0)
    sigma_space: float = param(1.5, "spatial sigma, in packed pixels", low=0.75, high=3.0)
    diameter: int = param(9, "neighbourhood diameter, in packed pixels (OpenCV's d)", low=3, high=15)

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        return denoise_stabilised(raw.packed, raw.noise, self._filter_planes)

    def _filter_planes(self, stabilised: np.ndarray) -> np.ndarray:
        """``(h, w, 4)`` float64 with unit noise std -> the filtered ``(h, w, 4)`` float64 (OpenCV filters
        each plane as a float32 image)."""
        import cv2

        out = np.empty_like(stabilised)
        for plane in range(stabilised.shape[-1]):
            src = np.ascontiguousarray(stabilised[..., plane], dtype=np.float32)
            out[..., plane] = cv2.bilateralFilter(src, self.diameter, self.sigma_color, self.sigma_space)
        return out

