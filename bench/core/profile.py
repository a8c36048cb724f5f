"""The noise model's parameters: ``var(x) = a * x + b`` in the normalised domain (numpy only, so that
methods and listings can name a profile without importing the estimator's scipy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The organisers' ranges of a and b.
A_RANGE = (1e-4, 1e-2)
B_RANGE = (1e-6, 1e-3)


@dataclass(frozen=True)
class NoiseProfile:
    """Noise variance ``a * x + b`` of a normalised packed image; ``source`` is "oracle" or "estimate"."""

    a: float
    b: float
    source: str = "oracle"

    def std(self, x: np.ndarray) -> np.ndarray:
        """Per-pixel noise standard deviation at clean level ``x`` (same shape as ``x``, float)."""
        return np.sqrt(np.maximum(self.a * np.asarray(x) + self.b, 0.0))


