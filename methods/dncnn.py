"""DnCNN (Zhang et al. 2017) on the packed Bayer planes with a noise-map input, shipped weights, tiled
inference. The network itself is ``methods/networks/dncnn.py``; loading and inference are
``methods.toolkit.learned``; training is ``python -m bench train dncnn``."""

from __future__ import annotations

from dataclasses import dataclass

from methods.toolkit.learned import LearnedMethod
from methods.registry import register_method


@register_method("dncnn")
@dataclass
class DnCNNMethod(LearnedMethod):
    """DnCNN residual CNN on the 4 packed planes plus a noise-std map from the (estimated) noise profile."""

    network = "dncnn"
    network_module = "methods.networks.dncnn"
    network_class_name = "DnCNN"
    #: what a 2-core CPU trains in about an hour
    training_config = {"depth": 12, "features": 48, "noise_map": True, "batch_norm": False}
