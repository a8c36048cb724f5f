"""Learned methods on the CPU with tiny random-initialised networks: inference, tiling, training,
checkpoints, the training data pipeline, and the command line."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.core.errors import BenchError  # noqa: E402
from methods.toolkit.inference import network_input, run_tiled, tile_starts  # noqa: E402
from methods.toolkit.learned import build_network, load_network  # noqa: E402
from bench.core.noise_model import NoiseProfile  # noqa: E402
from methods.toolkit.checkpoint import Checkpoint  # noqa: E402
from bench.train import TrainConfig, training_loss  # noqa: E402
from bench.training_data import bayer_augment, synthetic_pair  # noqa: E402
from methods.base import NoisyRaw  # noqa: E402
from methods.registry import create_method  # noqa: E402
from tests.test_cli import bench  # noqa: E402

TINY = {
    "nafnet": {"width": 8, "encoder_blocks": [1, 1], "middle_blocks": 1, "decoder_blocks": [1, 1],
               "noise_map": True, "pool_window": 16},
    "dncnn": {"depth": 4, "features": 8, "noise_map": True},
}
PROFILE = NoiseProfile(4e-3, 2e-4)


def _tiny(network: str, seed: int = 0):
    """A tiny network whose zero-initialised parts (NAFNet's block scales, DnCNN's last layer) get random
    values, so that every part of it, channel attention included, affects the output."""
    torch.manual_seed(seed)
    net = build_network(network, TINY[network])
    with torch.no_grad():
        for name, value in net.named_parameters():
            if name.endswith(("beta", "gamma")):
                value.uniform_(-0.5, 0.5)
        if network == "dncnn":
            net.body[-1].weight.normal_(0.0, 0.1)
    return net.eval()


def _noisy_image(height: int = 80, width: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / 40.0
    clean = 0.3 + 0.2 * np.sin(xx)[..., None] * np.cos(yy)[..., None] * np.ones(4)
    return np.clip(clean + 0.05 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("network", ["nafnet", "dncnn"])
def test_network_shapes_and_residual(network):
    net = _tiny(network)
    x = torch.rand(2, 8, 32, 48)
    assert net(x).shape == (2, 4, 32, 48)
    assert net.size_multiple() in (1, 4)


@pytest.mark.parametrize("network", ["nafnet", "dncnn"])
def test_tiled_inference_equals_whole_frame(network):
    net = _tiny(network)
    inputs = network_input(_noisy_image(150, 171), PROFILE)  # 171: not a multiple of NAFNet's 4
    whole = run_tiled(net, inputs, tile=0)
    tiled = run_tiled(net, inputs, tile=96, overlap=48)
    assert tiled.shape == whole.shape == (4, 150, 171)
    reference = inputs[:4]
    psnr = [10 * np.log10(1 / np.mean((out - reference) ** 2)) for out in (whole, tiled)]
    assert abs(psnr[0] - psnr[1]) < 0.01
    assert np.abs(tiled - whole).max() < (1e-3 if network == "dncnn" else 2e-3)


def test_tile_starts_cover_the_image_with_overlap():
    assert tile_starts(100, 200, 16) == [0]
    starts = tile_starts(300, 128, 32)
    assert starts[0] == 0 and starts[-1] == 300 - 128
    assert all(b - a <= 128 - 32 for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("network", ["nafnet", "dncnn"])
def test_method_loads_a_weights_file_and_denoises(network, tmp_path):
    path = tmp_path / f"{network}.pth"
    net = _tiny(network)
    Checkpoint.of(network, net, {"note": "test"}).save(path)
    raw = NoisyRaw(_noisy_image()[None], "BGGR", lambda: PROFILE, "test")
    method = create_method(network, {"weights": str(path), "tile": 48, "overlap": 16})
    first, second = method.denoise(raw), create_method(network, {"weights": str(path)}).denoise(raw)
    assert first.shape == raw.packed.shape and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1
    assert np.array_equal(first, method.denoise(raw))
    assert np.abs(first - second).max() < 0.01  # tiled (48) against one 80x96 tile


def test_checkpoint_round_trip(tmp_path):
    net = _tiny("nafnet", seed=3)
    Checkpoint.of("nafnet", net, {}).save(tmp_path / "w.pth")
    loaded = load_network(tmp_path / "w.pth", "nafnet")
    x = torch.rand(1, 8, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    with pytest.raises(BenchError, match="holds a nafnet network, not dncnn"):
        load_network(tmp_path / "w.pth", "dncnn")


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="bad.pth: not a readable weights file"):
        load_network(bad, "nafnet")
    torch.save({"something": 1}, tmp_path / "other.pth")
    with pytest.raises(BenchError, match="not a raw-bench weights file"):
        load_network(tmp_path / "other.pth", "nafnet")


@pytest.mark.parametrize("loss", ["l1", "psnr"])
def test_training_steps_lower_the_loss_on_a_fixed_batch(loss):
    torch.manual_seed(0)
    net = build_network("nafnet", TINY["nafnet"]).train()
    rng = np.random.default_rng(0)
    image = (rng.random((200, 200, 3)) * 255).astype(np.uint8)
    batch = [synthetic_pair(image, 32, rng, 1.0, PROFILE) for _ in range(4)]
    inputs = torch.from_numpy(np.stack([network_input(noisy, profile) for noisy, _, profile in batch]))
    targets = torch.from_numpy(np.stack([clean.transpose(2, 0, 1) for _, clean, _ in batch]).copy())
    config = TrainConfig(network="nafnet", out=None, loss=loss, fourier_weight=0.1, adjacent_weight=0.1)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        value = training_loss(net(inputs), targets, config)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    assert losses[-1] < losses[0]


def test_synthetic_pair_follows_the_generator():
    rng = np.random.default_rng(1)
    image = np.full((300, 300, 3), 128, dtype=np.uint8)
    noisy, clean, profile = synthetic_pair(image, 64, rng, 0.0, NoiseProfile(1e-3, 1e-4))
    assert noisy.shape == clean.shape == (64, 64, 4) and noisy.dtype == np.float32
    assert 0 <= noisy.min() and noisy.max() <= 1
    expected = np.mean(profile.a * clean + profile.b)
    assert abs(np.var(noisy - clean) / expected - 1) < 0.1
    drawn = [synthetic_pair(image, 16, rng, 1.0)[2] for _ in range(20)]
    assert all(1e-4 <= p.a <= 1e-2 and 1e-6 <= p.b <= 1e-3 for p in drawn)


@pytest.mark.parametrize("flips", [(True, False, False), (False, True, False), (False, False, True),
                                   (True, True, True)])
def test_bayer_augment_keeps_bggr(flips):
    colour = np.zeros((10, 10), dtype=int)  # 0 = B, 1 = G, 2 = R in BGGR
    colour[0::2, 1::2] = colour[1::2, 0::2] = 1
    colour[1::2, 1::2] = 2
    out = bayer_augment(colour, *flips)
    assert out.shape == (8, 8)
    assert (out[0::2, 0::2] == 0).all() and (out[1::2, 1::2] == 2).all()
    assert (out[0::2, 1::2] == 1).all() and (out[1::2, 0::2] == 1).all()


def test_train_command_writes_weights_card_and_resumes(tmp_path):
    import cv2
    from skimage import data

    clean = tmp_path / "clean"
    clean.mkdir()
    for k, image in enumerate([data.astronaut(), data.coffee(), data.chelsea()]):
        cv2.imwrite(str(clean / f"{k}.png"), image[:300, :300, ::-1])
    out = tmp_path / "run"
    args = ["train", "nafnet", "--clean-dir", str(clean), "--steps", "2", "--batch", "2", "--patch", "32",
            "--val-every", "2", "--config", '{"width": 8, "encoder_blocks": [1], "decoder_blocks": [1], '
            '"middle_blocks": 1}', "--out", str(out)]
    result = bench(*args)
    assert result.returncode == 0, result.stderr
    assert "validation at step 2" in result.stderr and "ETA" in result.stderr
    assert (out / "best.pth").is_file() and "Model card: nafnet" in (out / "model_card.md").read_text()
    resumed = bench(*[a if a != "2" else "3" for a in args[:6]], *args[6:], "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr and "step 3/3" in resumed.stderr
    weights = load_network(out / "best.pth", "nafnet")
    assert weights.config["width"] == 8


def test_train_without_data_is_a_one_line_error():
    result = bench("train", "dncnn", "--steps", "1")
    assert result.returncode == 2 and "error: give training data" in result.stderr


@pytest.mark.parametrize("network", ["nafnet", "dncnn"])
def test_shipped_weights_tile_without_changing_the_score(network):
    from methods.toolkit.learned import LearnedMethod
    from bench.core.noise_model import add_noise
    from bench.core.rawio import normalize, pack
    from tests.helpers import smooth_clean_mosaic

    path = LearnedMethod.shipped_weights().with_name(f"{network}.pth")
    net = load_network(path, network)
    clean_mosaic = smooth_clean_mosaic(1200, 1400, seed=4)  # 600 x 700 packed: 2 x 2 default tiles
    noisy_mosaic = add_noise(clean_mosaic, PROFILE.a, PROFILE.b, np.random.default_rng(2), 1024, 16383)
    clean = normalize(pack(clean_mosaic), 1024, 16383).transpose(2, 0, 1)
    inputs = network_input(np.clip(normalize(pack(noisy_mosaic), 1024, 16383), 0, 1), PROFILE)
    psnr = [10 * np.log10(1 / np.mean((np.clip(out, 0, 1) - clean) ** 2))
            for out in (run_tiled(net, inputs, tile=0), run_tiled(net, inputs, tile=512, overlap=64))]
    assert psnr[0] > 10 * np.log10(1 / np.mean((inputs[:4] - clean) ** 2)) + 3  # it denoises
    assert abs(psnr[0] - psnr[1]) < 0.01


def test_train_on_real_pairs_validates_on_held_out_pairs(pair_folder, tmp_path):
    result = bench("train", "dncnn", "--data", str(pair_folder), "--steps", "2", "--batch", "2", "--patch", "16",
                   "--val-every", "1", "--config", '{"depth": 3, "features": 8}', "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "2 training pairs" in result.stderr and "1 held out" in result.stderr
    assert "validation at step 1" in result.stderr and "validation at step 2" in result.stderr


def test_a_new_network_is_its_method_file_alone(monkeypatch, pair_folder, tmp_path):
    """A learned method class naming its network module is all training and loading need: no switch on
    network names anywhere in the harness (before, train, cli and learned each listed nafnet and dncnn)."""
    from dataclasses import dataclass

    from bench.train import TrainConfig, train
    from methods.toolkit.learned import LearnedMethod
    from tests.helpers import register_for_test

    @dataclass
    class TinyNet(LearnedMethod):
        """A three-layer DnCNN under its own name."""

        network = "_tiny"
        network_module = "methods.networks.dncnn"
        network_class_name = "DnCNN"
        training_config = {"depth": 3, "features": 8, "noise_map": True, "batch_norm": False}

    register_for_test(monkeypatch, "_tiny", TinyNet)
    best = train(TrainConfig("_tiny", tmp_path / "run", steps=2, data=pair_folder, batch=2, patch=16, val_every=2),
                 log=lambda message: None)
    net = load_network(best, "_tiny")
    assert net.config["depth"] == 3 and net.config["features"] == 8


def test_a_damaged_weights_file_names_the_field_at_fault(tmp_path):
    import torch

    from bench.core.errors import BenchError
    from methods.toolkit.checkpoint import CHECKPOINT_FORMAT

    path = tmp_path / "w.pth"
    torch.save({"format": CHECKPOINT_FORMAT, "network": "nafnet", "config": [1, 2], "state_dict": {}, "card": {}},
               path)
    with pytest.raises(BenchError, match=r"w.pth: config is list, not dict"):
        Checkpoint.load(path)
    torch.save({"format": CHECKPOINT_FORMAT, "network": "nafnet", "config": {}, "state_dict": {}, "card": {},
                "step": 3}, path)
    with pytest.raises(BenchError, match="a training checkpoint without optimizer"):
        Checkpoint.load(path)
