"""What the learned methods share: finding a network through its method file, building it, loading its
weights (``methods.toolkit.checkpoint``) and blind tiled inference, in the networks' own Bayer layout
whatever the input's (``NETWORK_CFA``)."""

from __future__ import annotations

import importlib
import inspect
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from bench.core.cfa import from_cfa, to_cfa
from bench.core.errors import BenchError, first_line
from bench.core.rawio import pack, unpack
from methods.toolkit.ensemble import ENSEMBLE_COUNTS, ensemble_average
from methods.toolkit.checkpoint import Checkpoint
from methods.toolkit.inference import network_input, pick_device, run_tiled
from methods.base import Method, NoisyRaw, at_least, between, param
from methods.registry import get_method_class, list_methods

#: The Bayer layout the networks work in: ``bench train`` makes BGGR patches, and ``network_denoise`` brings
#: an image of any other Bayer layout to it (and back).
NETWORK_CFA = "BGGR"
#: Where shipped weights live: ``methods/weights/<network>.pth`` with a model card ``<network>.md``.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def learned_method_class(network: str) -> "type[LearnedMethod]":
    """The registered learned method ``network`` (a network's name is its method's name); BenchError naming
    the learned methods otherwise."""
    cls = get_method_class(network)
    if not issubclass(cls, LearnedMethod):
        learned = [name for name in list_methods() if issubclass(get_method_class(name), LearnedMethod)]
        raise BenchError(f"{network!r} is not a learned method; the networks are: {', '.join(learned)}")
    return cls


def network_class(network: str):
    """The torch module class of ``network``: ``network_class_name`` in ``network_module``, as its method
    file declares them (importing it imports torch)."""
    cls = learned_method_class(network)
    return getattr(importlib.import_module(cls.network_module), cls.network_class_name)


def build_network(network: str, config: dict):
    """The untrained torch module ``network`` with constructor arguments ``config`` (settings added after a
    checkpoint was written take the constructor's defaults)."""
    return network_class(network)(**config)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: The JSON values a network setting takes, by the type of its constructor default: (what to say, the test).
SETTING_TYPES = {
    bool: ("true or false", lambda value: isinstance(value, bool)),
    int: ("an integer", _is_integer),
    tuple: ("a list of integers", lambda value: isinstance(value, list) and all(map(_is_integer, value))),
}


def check_network_config(network: str, config: object, shown: str) -> dict:
    """Settings over ``network``'s training defaults (``bench train --config``, shown to the user as
    ``shown``): a dict of constructor arguments of the right types that build a network; BenchError naming
    the key or the problem otherwise."""
    if not isinstance(config, dict):
        raise BenchError(f'--config: must be a JSON object such as {{"width": 32}}, not {shown}')
    defaults = {name: p.default for name, p in inspect.signature(network_class(network)).parameters.items()}
    for key, value in config.items():
        if key not in defaults:
            raise BenchError(f"--config: {network} has no setting {key!r} (it has {', '.join(defaults)})")
        what, accepts = SETTING_TYPES.get(type(defaults[key]), ("anything", lambda value: True))
        if not accepts(value):
            raise BenchError(f"--config: {key!r} must be {what}, not {json.dumps(value)}")
    try:
        with warnings.catch_warnings():  # torch warns about zero-sized layers before it fails on them
            warnings.simplefilter("ignore")
            build_network(network, {**learned_method_class(network).training_config, **config})
    except (ValueError, TypeError, RuntimeError) as exc:
        raise BenchError(f"--config: {network} cannot be built with {shown} ({first_line(exc)})") from None
    return config


def load_network(path: Path, expected_network: str):
    """The network stored in ``path``, in eval mode on the CPU; BenchError if it is another network."""
    checkpoint = Checkpoint.load(path)
    if checkpoint.network != expected_network:
        raise BenchError(f"{path}: holds a {checkpoint.network} network, not {expected_network}")
    net = build_network(checkpoint.network, checkpoint.config)
    net.load_state_dict(checkpoint.state_dict)
    return net.eval()


def network_denoise(net, packed: np.ndarray, noise, tile: int, overlap: int, device: str,
                    half: bool, cfa: str = NETWORK_CFA, self_ensemble: int = 1) -> np.ndarray:
    """Denoise one image with a packed-RAW network (``methods/networks`` convention).

    packed: ``(h, w, 4)`` float32 normalised noisy image. noise: a function returning its NoiseProfile,
    called only when the network takes a noise map. tile, overlap, device, half: as declared on
    ``LearnedMethod``. cfa: the colour of each plane of ``packed`` (any Bayer layout): an image that is not
    ``NETWORK_CFA`` is padded by a reflected row and/or column to that layout for the network, and its
    output cropped back (``bench.core.cfa.to_cfa``), so every plane is denoised as its own colour and the
    output lines up with ``packed``. self_ensemble: how many Bayer-preserving flips / transposes to average
    (``methods.toolkit.ensemble``; 1 = off). Returns the denoised ``(h, w, 4)`` float32 clipped to [0, 1].
    """
    device = pick_device(device)
    net = net.to(device).half() if half else net.to(device)
    profile = noise() if net.noise_map else None
    image = to_cfa(packed, cfa, NETWORK_CFA)

    def denoise_packed(planes: np.ndarray) -> np.ndarray:
        out = run_tiled(net, network_input(planes, profile), tile=tile, overlap=overlap, device=device, half=half)
        return out.transpose(1, 2, 0)

    if self_ensemble == 1:
        out = denoise_packed(image)
    else:
        out = pack(ensemble_average(unpack(image), lambda mosaic: unpack(denoise_packed(pack(mosaic))),
                                    self_ensemble))
    return np.clip(from_cfa(out, cfa, NETWORK_CFA), 0.0, 1.0)


def load_model_file(path: Path, network_class):
    """A network saved by ``bench export`` (``model.pth``: a dict with the ``config`` the class is built with
    and its ``state_dict``) -> the ``network_class`` module in eval mode on the CPU."""
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    net = network_class(**checkpoint["config"])
    net.load_state_dict(checkpoint["state_dict"])
    return net.eval()


@dataclass
class LearnedMethod(Method):
    """Base of the network methods: weights file, tiled blind inference.

    A subclass (one file in ``methods/``) names its network and where it is defined, which is all the
    harness needs to load, train and export it: ``network`` (= the registered method name), the torch module
    class ``network_class_name`` in ``network_module`` (a file of ``methods/networks`` importing only torch),
    and ``training_config``, the constructor arguments ``bench train`` starts from.
    """

    kind = "learned"
    requires = {"torch": "torch"}
    network: ClassVar[str] = ""
    network_module: ClassVar[str] = ""
    network_class_name: ClassVar[str] = ""
    training_config: ClassVar[dict] = {}
    weights: str = param("", "weights file (.pth from bench train); empty = the shipped weights")
    tile: int = param(512, "inference tile side in packed pixels (0 = whole image); bounds memory",
                      valid=at_least(0))
    overlap: int = param(64, "pixels shared by neighbouring tiles, cross-faded (at least NAFNet's pooling "
                                 "window, so tiled and whole-image results agree)", valid=at_least(0))
    device: str = param("auto", "where to run", choices=("auto", "cpu", "cuda"))
    half: bool = param(False, "fp16 inference (CUDA only)")
    self_ensemble: int = param(1, "Bayer-preserving flips/transposes averaged (1 = off, 2, 4 or 8; costs as "
                                  "many network passes)", choices=ENSEMBLE_COUNTS, valid=between(1, 8))

    @classmethod
    def shipped_weights(cls) -> Path:
        return WEIGHTS_DIR / f"{cls.network}.pth"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = super().unavailable_reason()
        if reason is None and not cls.shipped_weights().is_file():
            return (f"no shipped weights at {cls.shipped_weights()} (train some with "
                    f"`python -m bench train {cls.network}` and pass params weights=...)")
        return reason

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        return network_denoise(self.loaded_network(), raw.packed, lambda: raw.noise, tile=self.tile,
                               overlap=self.overlap, device=self.device, half=self.half, cfa=raw.cfa,
                               self_ensemble=self.self_ensemble)

    def weights_path(self) -> Path:
        """The weights file this instance uses: its ``weights`` parameter, else the shipped weights."""
        return Path(self.weights) if self.weights else self.shipped_weights()

    def resource_files(self) -> list[Path]:
        return [self.weights_path()]

    def loaded_network(self):
        """The network of the weights file, loaded once, in eval mode."""
        if not hasattr(self, "_cached_network"):
            self._cached_network = load_network(self.weights_path(), self.network)
        return self._cached_network
