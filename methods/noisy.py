"""The identity reference: what scoring the noisy input itself gives."""

from dataclasses import dataclass

import numpy as np

from methods.base import Method, NoisyRaw
from methods.registry import register_method


@register_method("noisy")
@dataclass
class Noisy(Method):
    """Identity: returns the noisy reference frame unchanged (the floor every denoiser must beat)."""

    kind = "reference"

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        return raw.packed
