"""Multi-frame non-local means (OpenCV ``fastNlMeansDenoisingMulti``, 16-bit path) on a burst.

Each frame is variance-stabilised with the image's noise profile and scaled to 16-bit integers like
:mod:`methods.nlm`; OpenCV then averages, for every pixel of the reference, similar patches found in a
search window of every frame of a temporal window centred on the reference. No explicit alignment: camera
motion smaller than half the search window is found by the patch search itself. The four Bayer planes are
filtered as one 4-channel image, so the patch distance sums over all colours and each colour is averaged
only from its own plane (as in :mod:`methods.nlm`, where shared weights measured better than per-plane).

OpenCV wants the reference in the middle of an odd number of frames: frame 0 is put in the middle and the
other frames around it; with an even number of frames the last one is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from methods.toolkit.vst import denoise_stabilised, forward
from methods.base import Method, NoisyRaw, above, at_least, param
from methods.nlm import UnitNoiseLevels, odd
from methods.registry import register_method


@register_method("nlm_multi")
@dataclass
class NonLocalMeansMulti(Method):
    """Multi-frame NLM (OpenCV fastNlMeansDenoisingMulti, 16-bit, L1) over the burst, 4 Bayer planes jointly."""

    kind = "burst"
    requires = {"cv2": "opencv-python-headless"}
    h: float = param(1.4, "filter strength: OpenCV's h for the 4-plane L1 distance, in units of the noise std",
                     low=0.6, high=3.0, valid=above(0))
    template_window: int = param(3, "patch side in packed pixels (odd; an even value is rounded up)",
                                 low=3, high=7, valid=at_least(1))
    search_window: int = param(9, "search window side in packed pixels (odd; an even value is rounded up); "
                                  "must exceed twice the motion between frames", low=5, high=21, valid=at_least(1))
    temporal_window: int = param(0, "frames used, centred on the reference (odd): 0 = as many as the burst has",
                                 valid=at_least(0))

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        profile = raw.noise
        others = [forward(frame, profile) for frame in raw.frames[1:]]
        return denoise_stabilised(raw.packed, profile, lambda reference: self._filter(reference, others))

    def _filter(self, reference: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
        """Stabilised ``(h, w, 4)`` reference and other frames -> the denoised ``(h, w, 4)`` float64."""
        import cv2

        count = len(others) + 1 if self.temporal_window <= 0 else min(self.temporal_window, len(others) + 1)
        count = count if count % 2 == 1 else count - 1
        half = count // 2
        ordered = others[:half] + [reference] + others[half:2 * half]
        levels = UnitNoiseLevels.fit(np.stack(ordered))
        images = [levels.to_uint16(frame) for frame in ordered]
        options = dict(h=[self.h * levels.scale], templateWindowSize=odd(self.template_window),
                       searchWindowSize=odd(self.search_window), normType=cv2.NORM_L1)
        if count == 1:
            filtered = cv2.fastNlMeansDenoising(images[0], **options)
        else:
            filtered = cv2.fastNlMeansDenoisingMulti(images, half, count, **options)
        return levels.from_uint16(filtered)
