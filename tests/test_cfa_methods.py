"""Methods see colours, not plane positions: on a *twin* of a BGGR image (the same sensor pixels cut one row
and/or one column further in, so that its CFA is RGGB, GRBG or GBRG) a method gains as much over the noisy
input as on the original, its output keeps each plane's colour, and a learned method's output lines up with
the original's pixel for pixel. The report's ISP renders a twin as it renders the original."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from bench.core.demosaic import mosaic_rgb
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.rawio import normalize, pack, unpack
from methods.base import NoisyRaw
from methods.registry import create_method, get_method_class, list_methods
from tests.helpers import smooth_clean_mosaic

PROFILE = NoiseProfile(a=2e-3, b=1e-4, source="oracle")
#: Each twin's window of the BGGR mosaic, by the twin's CFA (planes in PLANE_OFFSETS order).
TWINS = {"RGGB": (slice(1, -1), slice(1, -1)), "GRBG": (slice(1, -1), slice(None)),
         "GBRG": (slice(None), slice(1, -1))}
#: A twin's gain over its noisy input may differ from the original's on the same pixels by at most this (dB).
GAIN_TOLERANCE = 0.1
#: Sensor pixels next to a twin's edges left out of its gain.
MARGIN = 8


def _skip_if_unavailable(name: str) -> None:
    reason = get_method_class(name).unavailable_reason()
    if reason:
        pytest.skip(f"{name} cannot run here: {reason}")


def coloured_clean_mosaic(height: int, width: int) -> np.ndarray:
    """A clean BGGR ``(height, width)`` uint16 mosaic (black 1024, white 16383) whose R, G and B are three
    unrelated smooth images at different levels, so a plane taken for another colour stands out."""
    rgb = np.stack([normalize(smooth_clean_mosaic(height, width, seed=seed), 1024, 16383) * gain
                    for seed, gain in ((11, 0.7), (12, 1.0), (13, 0.5))], axis=-1)
    return np.round(mosaic_rgb(rgb, "BGGR") * 15359 + 1024).astype(np.uint16)


def _pair(height: int, width: int, frames: int = 1):
    """``(clean, [noisy frames])`` BGGR uint16 mosaics."""
    clean = coloured_clean_mosaic(height, width)
    rng = np.random.default_rng(5)
    return clean, [add_noise(clean, PROFILE.a, PROFILE.b, rng, 1024, 16383) for _ in range(frames)]


def _packed(mosaic: np.ndarray) -> np.ndarray:
    return np.clip(normalize(pack(mosaic), 1024, 16383), 0.0, 1.0)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def _denoised_mosaic(method, noisy: list[np.ndarray], cfa: str, window=(slice(None), slice(None))) -> np.ndarray:
    """The method's output on the ``window`` of the noisy mosaics (of layout ``cfa``), as a float mosaic."""
    frames = np.stack([_packed(n[window]) for n in noisy])
    frames = frames if method.kind == "burst" else frames[:1]
    return unpack(np.asarray(method.denoise(NoisyRaw(frames, cfa, lambda: PROFILE, "twin")), np.float64))


def _gain(denoised: np.ndarray, noisy: np.ndarray, clean: np.ndarray) -> float:
    """PSNR gain (dB) of a denoised float mosaic over the noisy uint16 one, against the clean one."""
    clean, noisy = normalize(clean, 1024, 16383), np.clip(normalize(noisy, 1024, 16383), 0, 1)
    return _psnr(denoised, clean) - _psnr(noisy, clean)


def _twin_gains(name: str, params: dict, height: int, width: int) -> tuple[dict, dict]:
    """``(gain differences, outputs)``: for each twin, its gain minus the original's on the same pixels (the
    twin's but ``MARGIN`` from its edges, which it sees with fewer real neighbours than the original does),
    and the twin's and the original's outputs on the twin's window."""
    method = create_method(name, params)
    clean, noisy = _pair(height, width)
    original = _denoised_mosaic(method, noisy, "BGGR")
    differences, outputs = {}, {}
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    for cfa, window in TWINS.items():
        twin = _denoised_mosaic(method, noisy, cfa, window)
        noisy_twin, clean_twin = noisy[0][window][inner], clean[window][inner]
        differences[cfa] = (_gain(twin[inner], noisy_twin, clean_twin)
                            - _gain(original[window][inner], noisy_twin, clean_twin))
        outputs[cfa] = (twin, original[window])
    return differences, outputs


@pytest.mark.parametrize("network", ["dncnn", "nafnet"])
def test_learned_method_gains_the_same_on_every_bayer_twin_and_lines_up(network):
    """Shipped weights (trained on BGGR). While an RGGB, GRBG or GBRG input went in as if it were BGGR, the
    twins gained from 0.2 dB more to 2 dB (DnCNN) and 9 dB (NAFNet) less than the original."""
    pytest.importorskip("torch")
    _skip_if_unavailable(network)
    differences, outputs = _twin_gains(network, {"device": "cpu"}, 130, 194)
    assert all(abs(d) <= GAIN_TOLERANCE for d in differences.values()), differences
    interior = (slice(16, -16), slice(16, -16))
    for cfa, (twin, original) in outputs.items():
        # the twin, padded back to BGGR, is the original but for its outermost rows and columns
        assert np.abs(twin[interior] - original[interior]).max() < 2e-3, cfa


def test_bm3d_gains_the_same_on_every_bayer_twin():
    """The twin's cells are the 2x2 blocks one pixel off the original's, so BM3D's output changes a little
    (its blocks lie elsewhere), but not its gain; a large enough image keeps that within 0.1 dB."""
    _skip_if_unavailable("bm3d")
    differences, _ = _twin_gains("bm3d", {"workers": 1}, 258, 386)
    assert all(abs(d) <= GAIN_TOLERANCE for d in differences.values()), differences


@pytest.mark.parametrize("order", [(3, 2, 1, 0), (2, 3, 0, 1), (1, 0, 3, 2)], ids=["RGGB", "GRBG", "GBRG"])
def test_bm3d_joint_haar_needs_no_colour_order(order):
    """BM3D's 2x2 Haar is over plane positions, and for every Bayer layout that is the Haar over the planes
    in colour order (B, G, G, R) up to the signs of channels 1-3 and a swap of channels 1 and 2, which BM3D
    (the same filtering in every channel but 0, a sign-symmetric shrinkage) passes through exactly:
    permuting the planes of an RGGB / GRBG / GBRG image to B, G, G, R first gives bit-identical output."""
    _skip_if_unavailable("bm3d")
    from methods.bm3d import bm3d_packed

    _, noisy = _pair(64, 96)
    packed = _packed(noisy[0])
    settings = dict(sigma_scale=0.9, speed="fast", tile_size=0, workers=1)
    as_positions = bm3d_packed(packed, PROFILE, **settings)
    in_colour_order = bm3d_packed(np.ascontiguousarray(packed[..., order]), PROFILE, **settings)
    np.testing.assert_array_equal(as_positions, in_colour_order[..., np.argsort(order)])


@pytest.mark.parametrize("name", list_methods())
def test_every_method_keeps_colours_on_an_rggb_twin(name):
    """Each output plane of an RGGB input is closest (correlation) to the clean plane of its own colour."""
    _skip_if_unavailable(name)
    method = create_method(name, {"device": "cpu"} if get_method_class(name).kind == "learned" else {})
    clean, noisy = _pair(96, 130, frames=4)
    window = TWINS["RGGB"]
    out = pack(_denoised_mosaic(method, noisy, "RGGB", window))
    reference = pack(normalize(clean[window], 1024, 16383).astype(np.float64))
    for k, colour in enumerate("RGGB"):
        correlations = {j: np.corrcoef(out[..., k].ravel(), reference[..., j].ravel())[0, 1] for j in range(4)}
        best = max(correlations, key=correlations.get)
        assert "RGGB"[best] == colour and correlations[k] > 0.9, (colour, correlations)


def test_bggr_input_takes_the_networks_own_path():
    """A BGGR image goes to the network as it is, so its output is today's, bit for bit."""
    torch = pytest.importorskip("torch")
    from methods.toolkit import learned

    _, noisy = _pair(64, 96)
    packed = _packed(noisy[0])
    seen = []

    class Recorder(torch.nn.Module):
        noise_map = False

        def forward(self, batch):
            seen.append(batch.clone())
            return batch[:, :4]

    out = learned.network_denoise(Recorder(), packed, lambda: PROFILE, tile=0, overlap=0, device="cpu", half=False)
    assert np.array_equal(seen[0][0].numpy().transpose(1, 2, 0), packed) and np.array_equal(out, packed)
    seen.clear()
    twin = _packed(noisy[0][1:-1, 1:-1])
    out = learned.network_denoise(Recorder(), twin, lambda: PROFILE, tile=0, overlap=0, device="cpu", half=False,
                                  cfa="RGGB")
    # the network saw the original BGGR cells (one reflected row and column added), and the output is the twin
    seen_mosaic = unpack(seen[0][0].numpy().transpose(1, 2, 0))
    assert np.array_equal(seen_mosaic[1:-1, 1:-1], unpack(twin)) and np.array_equal(out, twin)
    assert np.array_equal(seen_mosaic[1:-1, 1:-1], unpack(packed)[1:-1, 1:-1])


def test_exported_network_script_handles_any_bayer_cfa(tmp_path, monkeypatch):
    """network.py copies ``network_denoise`` with what it uses: given the CFA, it denoises an RGGB image as
    the method does."""
    pytest.importorskip("torch")
    _skip_if_unavailable("dncnn")
    from bench.export.choose import Choice
    from bench.export.script import script_source

    method = create_method("dncnn", {"device": "cpu"})
    path = tmp_path / "network.py"
    path.write_text(script_source(method, Choice("dncnn", {})))
    spec = importlib.util.spec_from_file_location("exported_network", path)
    exported = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, exported)  # its dataclasses look their module up
    spec.loader.exec_module(exported)
    _, noisy = _pair(64, 96)
    twin = _packed(noisy[0][1:-1, 1:-1])
    expected = method.denoise(NoisyRaw(twin[None], "RGGB", lambda: PROFILE, "twin"))
    got = exported.network_denoise(method.loaded_network(), twin, lambda: PROFILE, tile=method.tile,
                                   overlap=method.overlap, device="cpu", half=False, cfa="RGGB")
    np.testing.assert_array_equal(got, expected)


def test_report_renders_a_twin_as_the_original():
    """The report's ISP (white balance from the ground truth, demosaic, the overview) goes by the CFA's
    letters: a crop of an RGGB twin is the same picture as the BGGR original's, and naming the twin's
    CFA wrongly would swap its red and blue."""
    from bench.report.rendering import (Rendering, overview_thumbnail, packed_rgb, render_window,
                                        rendering_from_ground_truth)

    clean = coloured_clean_mosaic(96, 130)
    twin = clean[1:-1, 1:-1]
    rendering = rendering_from_ground_truth(_packed(clean), "BGGR")
    twin_rendering = rendering_from_ground_truth(_packed(twin), "RGGB")
    np.testing.assert_allclose(twin_rendering.gains, rendering.gains, rtol=0.02)
    # the twin's window (top, left) = (20, 30) is the original's (21, 31): render (20, 30) one pixel larger
    original = render_window(clean, "BGGR", (20, 30, 42, 62), 1024, 16383, rendering)[1:-1, 1:-1]
    same = render_window(twin, "RGGB", (20, 30, 40, 60), 1024, 16383, rendering)
    assert np.abs(same.astype(int) - original.astype(int)).max() <= 1
    wrong = render_window(twin, "BGGR", (20, 30, 40, 60), 1024, 16383, rendering)
    assert np.abs(wrong.astype(int) - original.astype(int)).mean() > 10
    half_res = packed_rgb(_packed(twin), "RGGB")
    np.testing.assert_array_equal(half_res[..., 0], _packed(twin)[..., 0])  # R is plane 0 of RGGB
    np.testing.assert_array_equal(half_res[..., 2], _packed(twin)[..., 3])
    assert overview_thumbnail(_packed(twin), "RGGB", (20, 30, 40, 60), Rendering((1.0, 1.0, 1.0))).ndim == 3
