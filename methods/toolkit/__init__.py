"""What the methods share and the harness does not need: the variance-stabilising transform, burst
alignment, tiled network inference and the learned-method base class. Imports only ``bench.core``."""
