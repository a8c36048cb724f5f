"""NAFNet (Chen et al. 2022) on the packed Bayer planes with a noise-map input, shipped weights, tiled
inference. The network itself is ``methods/networks/nafnet.py``; loading and inference are
``methods.toolkit.learned``; training is ``python -m bench train nafnet``."""

from __future__ import annotations

from dataclasses import dataclass

from methods.toolkit.learned import LearnedMethod
from methods.registry import register_method


@register_method("nafnet")
@dataclass
class NAFNetMethod(LearnedMethod):
    """NAFNet U-Net on the 4 packed planes plus a noise-std map from the (estimated) noise profile."""

    network = "nafnet"
    network_module = "methods.networks.nafnet"
    network_class_name = "NAFNet"
    #: what a 2-core CPU trains in about an hour
    training_config = {"width": 16, "encoder_blocks": [1, 1, 2], "middle_blocks": 2,
                                       "decoder_blocks": [1, 1, 1], "noise_map": True}
