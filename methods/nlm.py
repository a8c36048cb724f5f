"""Non-local means (OpenCV's fast NLM, 16-bit path) on the four Bayer planes, in the variance-stabilised domain.

The stabilised planes (unit noise std) are scaled to 16-bit integers and filtered as one 4-channel image:
OpenCV sums the L1 patch distance over the four planes, so all colours share one set of weights (more
reliable than per-plane weights), while each output plane is still averaged only from pixels of its own
colour. On the embedded set (oracle noise) this scores 55.78 against 54.77 for NLM on each plane separately,
each with its best settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.noise_model import NoiseProfile
from methods.toolkit.vst import denoise_stabilised
from methods.base import Method, NoisyRaw, above, at_least, param
from methods.registry import register_method

#: 16-bit levels per unit of noise std. Rounding to integers then adds noise of std 1/sqrt(12) level,
#: about 0.01 % of the noise variance.
LEVELS_PER_NOISE_STD = 32.0
#: Headroom kept free at both ends of the 16-bit range.
MARGIN_16BIT = 256.0


@dataclass(frozen=True)
class UnitNoiseLevels:
    """The map between stabilised values (unit noise std) and the 16-bit integers OpenCV's NLM filters:
    ``uint16 = round((value - lowest) * scale + MARGIN_16BIT)``. Values come back in the dtype of
    ``lowest``, the stabilised data's (float32 for ``nlm``, float64 for ``nlm_multi``)."""

    lowest: np.ndarray  # (4,) per-plane minimum, in the stabilised data's dtype
    scale: float  # 16-bit levels per unit of noise std

    @classmethod
    def fit(cls, stabilised: np.ndarray) -> "UnitNoiseLevels":
        """Levels for ``(..., h, w, 4)`` stabilised data: ``LEVELS_PER_NOISE_STD``, unless the widest plane
        would then not fit in 16 bits (very small b, a = 0)."""
        # rows of w*4 values reduced down the rows first: numpy's reduction over the leading axis of a
        # (pixels, 4) array runs 4 values at a time and was measured 20 times slower
        planes = stabilised.shape[-1]
        rows = stabilised.reshape(-1, stabilised.shape[-2] * planes)
        lowest = rows.min(axis=0).reshape(-1, planes).min(axis=0)
        highest = rows.max(axis=0).reshape(-1, planes).max(axis=0)
        spread = max(float((highest - lowest).max()), 1e-12)
        return cls(lowest, min(LEVELS_PER_NOISE_STD, (65535.0 - 2 * MARGIN_16BIT) / spread))

    def to_uint16(self, stabilised: np.ndarray) -> np.ndarray:
        """``(..., 4)`` stabilised values -> the same shape in uint16 levels."""
        levels = stabilised - self.lowest
        levels *= self.scale
        levels += MARGIN_16BIT
        np.rint(levels, out=levels)
        return levels.astype(np.uint16)

    def from_uint16(self, filtered: np.ndarray) -> np.ndarray:
        """``(..., 4)`` uint16 levels -> stabilised values, in the dtype of ``lowest``."""
        values = filtered.astype(self.lowest.dtype)
        values -= MARGIN_16BIT
        values /= self.scale
        values += self.lowest
        return values


def odd(size: int) -> int:
    """OpenCV's window sizes must be odd: an even size is rounded up."""
    return size if size % 2 == 1 else size + 1


def nlm_packed(packed: np.ndarray, profile: NoiseProfile, h: float, template_window: int,
               search_window: int) -> np.ndarray:
    """``(h, w, 4)`` float32 noisy normalised image with noise ``profile`` -> the denoised ``(h, w, 4)``
    float32 in [0, 1]. Parameters as declared on ``NonLocalMeans``."""
    import cv2

    def filter_unit_noise(stabilised: np.ndarray) -> np.ndarray:
        # (h, w, 4) float32 with unit noise std -> denoised (h, w, 4) float32, via 16-bit NLM on 4 planes
        levels = UnitNoiseLevels.fit(stabilised)
        filtered = cv2.fastNlMeansDenoising(levels.to_uint16(stabilised), h=[h * levels.scale],
                                            templateWindowSize=odd(template_window),
                                            searchWindowSize=odd(search_window), normType=cv2.NORM_L1)
        return levels.from_uint16(filtered)

    # float32: the 16-bit levels (1/32 of a noise std) are far coarser than float32's precision
    return denoise_stabilised(packed, profile, filter_unit_noise, dtype=np.float32)


@register_method("nlm")
@dataclass
class NonLocalMeans(Method):
    """Non-local means (OpenCV fast NLM, 16-bit, L1 distance) on the 4 Bayer planes with shared weights."""

    kind = "classical"
    requires = {"cv2": "opencv-python-headless"}
    packed_function = staticmethod(nlm_packed)
    wrapped_library = "cv2.fastNlMeansDenoising"
    # h <= 0 leaves the image unchanged; window sides below 1 are not windows
    h: float = param(1.7, "filter strength: OpenCV's h for the 4-plane L1 distance, in units of the noise std",
                     low=0.8, high=3.0, valid=above(0))
    template_window: int = param(3, "patch side in packed pixels (odd; an even value is rounded up)",
                                 low=3, high=9, valid=at_least(1))
    search_window: int = param(13, "search window side in packed pixels (odd; an even value is rounded up)",
                               low=7, high=31, valid=at_least(1))

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        return nlm_packed(raw.packed, raw.noise, **self.param_values())

    def library_call(self, packed: np.ndarray, sigma: float) -> np.ndarray:
        """OpenCV's 16-bit NLM (L1) on the 4-plane image scaled straight to the full 16-bit range (no
        stabilisation), strength ``h`` noise stds -> ``(h, w, 4)`` uint16 levels."""
        import cv2

        levels = np.round(np.clip(packed, 0, 1) * 65535).astype(np.uint16)
        return cv2.fastNlMeansDenoising(levels, h=[self.h * sigma * 65535],
                                        templateWindowSize=odd(self.template_window),
                                        searchWindowSize=odd(self.search_window), normType=cv2.NORM_L1)
