"""``bench train``: train a packed-RAW network (NAFNet or DnCNN) on synthetic and/or real pairs.

Training pairs come from
* clean sRGB images (``--clean-dir``, any number of folders of PNG/JPEG/BMP/TIFF): a random crop is
  flipped/rotated, unprocessed to linear camera RGB (``bench.embedded.unprocess``), given a random
  optical blur, mosaicked to BGGR and made noisy with the organisers' generator (clip, truncation to whole
  DN) at (a, b) drawn log-uniformly over the competition ranges. Flips and rotations are applied to the RGB
  crop before mosaicking, so the Bayer pattern is untouched;
* a competition-layout folder (``--data``): random crops of the real pairs, augmented by flips and
  transposes of the mosaic that keep the BGGR phase (:func:`bayer_augment`).

Loss: L1 (default) or PSNR, plus optional Fourier-magnitude and adjacent-pixel (gradient) L1 terms.
AdamW with a cosine learning-rate schedule. Every ``val_every`` steps the model is scored with the
competition Score on fixed held-out pairs; ``last.pt`` (resumable training state) and, when the score
improves, ``best.pth`` (weights + model card) are written to the output folder, with ``model_card.md``.
The held-out pairs are every 10th clean image (sorted by path) and every 10th real pair.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bench import provenance
from bench.core.errors import BenchError
from methods.toolkit.checkpoint import Checkpoint, TrainingState
from methods.toolkit.learned import build_network, learned_method_class
from bench.core.noise_model import A_RANGE, B_RANGE, NoiseProfile, add_noise
from bench.core.levels import LevelPolicy, Levels
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass
class TrainConfig:
    """Everything a training run needs (``bench train`` fills it from the command line)."""

    network: str
    out: Path
    steps: int = 2000
    clean_dirs: list[Path] = field(default_factory=list)
    data: Path | None = None
    #: How the real pairs of ``data`` are normalised: the competition's levels, or each file's own tags.
    data_levels: LevelPolicy = field(default_factory=LevelPolicy)
    net_config: dict = field(default_factory=dict)
    batch: int = 8
    patch: int = 64  # packed pixels (a 128 x 128 mosaic)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "l1"
    fourier_weight: float = 0.0
    adjacent_weight: float = 0.0
    val_every: int = 250
    val_pairs: int = 12
    max_blur: float = 1.2
    device: str = "auto"
    threads: int = 0
    seed: int = 0
    resume: bool = False
    #: Replace the checkpoints already in ``out`` (without it and without ``resume``, they are refused).
    overwrite: bool = False
    log_every: int = 25


#: The files a training run writes to its output folder.
CHECKPOINT_FILES = ("best.pth", "last.pt")


def check_output_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """BenchError when a fresh training run (neither ``resume`` nor ``overwrite``) would replace the
    checkpoints in ``out``, or when both options are given."""
    if resume and overwrite:
        raise BenchError("--resume and --overwrite exclude each other: --resume continues from <out>/last.pt")
    found = [name for name in CHECKPOINT_FILES if (out / name).exists()]
    if found and not resume and not overwrite:
        raise BenchError(f"{out}: already holds {' and '.join(found)}; add --resume to continue that training "
                         "or --overwrite to replace it")


# ----------------------------------------------------------------------------------------------- data


def list_images(folders: list[Path]) -> list[Path]:
    """Every image file under ``folders`` (recursively), sorted; BenchError for a missing folder."""
    found = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise BenchError(f"{folder}: clean-image folder not found")
        found += [p for p in sorted(Path(folder).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    return found


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an image file; BenchError naming the file if it cannot be read."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise BenchError(f"{path}: not a readable image")
    return np.ascontiguousarray(image[..., ::-1])


def split_train_validation(paths: list[Path], every: int = 10) -> tuple[list[Path], list[Path]]:
    """Every ``every``-th image is held out for validation (deterministic, by sorted order)."""
    return [p for k, p in enumerate(paths) if k % every != 0], [p for k, p in enumerate(paths) if k % every == 0]


def synthetic_pair(srgb: np.ndarray, patch: int, rng: np.random.Generator, max_blur: float,
                   profile: NoiseProfile | None = None) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
    """One training pair from an ``(H, W, 3)`` uint8 sRGB image (both sides >= 2*patch + 8).

    Returns ``(noisy, clean, profile)``: ``(patch, patch, 4)`` float32 packed BGGR in [0, 1] and the noise
    profile used (drawn log-uniformly over the competition ranges unless given).
    """
    from scipy.ndimage import gaussian_filter

    from bench.embedded import mosaic_bggr, unprocess
    from bench.core.rawio import denormalize, normalize, pack

    margin = 4
    side = 2 * patch + 2 * margin
    top = int(rng.integers(0, srgb.shape[0] - side + 1))
    left = int(rng.integers(0, srgb.shape[1] - side + 1))
    crop = srgb[top:top + side, left:left + side].astype(np.float64) / 255.0
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = np.rot90(crop, k=int(rng.integers(0, 4)))
    linear, _ = unprocess(np.ascontiguousarray(crop), rng)
    sigma = float(rng.uniform(0.0, max_blur))
    if sigma > 0.05:
        linear = gaussian_filter(linear, sigma=(sigma, sigma, 0), mode="reflect")
    linear = linear[margin:margin + 2 * patch, margin:margin + 2 * patch]
    # stored as 16-bit DN exactly like the embedded set's ground truth, then the organisers' generator
    clean_mosaic = denormalize(mosaic_bggr(linear), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    if profile is None:
        profile = NoiseProfile(float(np.exp(rng.uniform(*np.log(A_RANGE)))),
                               float(np.exp(rng.uniform(*np.log(B_RANGE)))))
    noisy_mosaic = add_noise(clean_mosaic, profile.a, profile.b, rng, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    clean, noisy = (normalize(pack(m), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
                    for m in (clean_mosaic, noisy_mosaic))
    return noisy, clean, profile


def bayer_augment(mosaic: np.ndarray, flip_rows: bool, flip_columns: bool, transpose: bool) -> np.ndarray:
    """Flip / transpose an ``(S + 2, S + 2)`` BGGR mosaic patch (S even) and return the ``(S, S)`` BGGR
    patch: after a flip the pattern's phase changes along that axis, so one row (column) is dropped at
    each end to restore it. A transpose keeps BGGR as it is."""
    mosaic = mosaic[::-1][1:-1] if flip_rows else mosaic[:-2]
    mosaic = mosaic[:, ::-1][:, 1:-1] if flip_columns else mosaic[:, :-2]
    if transpose:
        mosaic = mosaic.T
    return np.ascontiguousarray(mosaic)


class PairSampler:
    """Random augmented crops of a competition-layout folder's pairs, loaded into memory once. Every 10th
    pair (by image order) is held out for validation when there are at least two."""

    def __init__(self, root: Path, patch: int, log: Callable[[str], None], levels: LevelPolicy | None = None):
        from bench.datasets import open_dataset
        from bench.evaluation import load_inputs, noise_for

        levels = levels or LevelPolicy()
        dataset = open_dataset(root, black_level=levels.black, white_level=levels.white, levels=levels.mode)
        if not dataset.has_ground_truth:
            raise BenchError(f"{root}: training pairs need ground truth")
        for message in dataset.check_files():
            log(f"warning: {message}")
        self.items = []
        for item in dataset.items:
            loaded = load_inputs(dataset, item, burst=None)
            pair = loaded.pair
            if pair.noisy.cfa != "BGGR":
                raise BenchError(f"{item.noisy_path}: training expects BGGR, got {pair.noisy.cfa}")
            mode = "oracle" if item.image_id in dataset.true_noise else "estimate"
            profile = noise_for(loaded, dataset, mode).profile()
            self.items.append((pair.noisy.mosaic, pair.gt.mosaic, profile, pair.noisy.levels))
        self.held_out = self.items[::10] if len(self.items) >= 2 else []
        self.items = [item for k, item in enumerate(self.items) if k % 10 != 0] if self.held_out else self.items
        self.patch = patch
        log(f"loaded {len(self.items)} training pairs from {root} ({len(self.held_out)} held out for validation)")

    def validation_pairs(self) -> list[tuple[np.ndarray, np.ndarray, NoiseProfile]]:
        """The held-out pairs' central crops (at most 256 x 256 packed), as ``(noisy, clean, profile)``."""
        from bench.core.rawio import pack_normalized

        pairs = []
        for noisy_mosaic, gt_mosaic, profile, levels in self.held_out:
            packed = [pack_normalized(m, levels.black_level, levels.white) for m in (noisy_mosaic, gt_mosaic)]
            height, width = packed[0].shape[:2]
            top, left = max((height - 256) // 2, 0), max((width - 256) // 2, 0)
            noisy, clean = (p[top:top + 256, left:left + 256] for p in packed)
            pairs.append((np.ascontiguousarray(noisy), np.ascontiguousarray(clean), profile))
        return pairs

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
        from bench.core.rawio import pack_normalized

        noisy_mosaic, gt_mosaic, profile, levels = self.items[int(rng.integers(len(self.items)))]
        side = 2 * self.patch + 2
        top = 2 * int(rng.integers(0, (noisy_mosaic.shape[0] - side) // 2 + 1))
        left = 2 * int(rng.integers(0, (noisy_mosaic.shape[1] - side) // 2 + 1))
        flips = rng.random(3) < 0.5
        out = []
        for mosaic in (noisy_mosaic, gt_mosaic):
            crop = bayer_augment(mosaic[top:top + side, left:left + side], *flips)
            out.append(pack_normalized(crop, levels.black_level, levels.white))
        return out[0], out[1], profile


class SyntheticSampler:
    """Random synthetic pairs from clean sRGB images held in memory."""

    def __init__(self, paths: list[Path], patch: int, max_blur: float):
        minimum = 2 * patch + 8
        self.images = [image for image in (read_rgb(p) for p in paths) if min(image.shape[:2]) >= minimum]
        if not self.images:
            raise BenchError(f"no clean image is at least {minimum} pixels on a side")
        self.patch, self.max_blur = patch, max_blur

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
        image = self.images[int(rng.integers(len(self.images)))]
        return synthetic_pair(image, self.patch, rng, self.max_blur)


def validation_pairs(paths: list[Path], count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, NoiseProfile]]:
    """``count`` fixed pairs (128 x 128 packed) from held-out images, with (a, b) spread over the five
    competition noise groups in turn; the same for every run with the same images and seed."""
    from bench.embedded import GROUP_A, GROUP_B

    rng = np.random.default_rng([seed, 7])
    images = [image for image in (read_rgb(p) for p in paths) if min(image.shape[:2]) >= 2 * 128 + 8]
    if not images:
        raise BenchError("no held-out image is large enough for validation (256 x 256 + 8)")
    pairs = []
    for k in range(count):
        group = k % len(GROUP_A)
        profile = NoiseProfile(GROUP_A[group], GROUP_B[group])
        pairs.append(synthetic_pair(images[k % len(images)], 128, rng, 1.0, profile))
    return pairs


# --------------------------------------------------------------------------------------------- losses


def training_loss(output, target, config: TrainConfig):
    """The configured loss of ``(B, 4, h, w)`` tensors: L1 or PSNR (mean over the batch of
    ``-10*log10(MSE)`` negated), plus ``fourier_weight`` x L1 of the 2-D FFT magnitudes and
    ``adjacent_weight`` x L1 of horizontal and vertical neighbour differences."""
    import torch

    if config.loss == "psnr":
        mse = ((output - target) ** 2).mean(dim=(1, 2, 3))
        loss = (10.0 * torch.log10(mse + 1e-12)).mean()
    else:
        loss = (output - target).abs().mean()
    if config.fourier_weight > 0:
        difference = torch.fft.rfft2(output).abs() - torch.fft.rfft2(target).abs()
        loss = loss + config.fourier_weight * difference.abs().mean() / output.shape[-1]
    if config.adjacent_weight > 0:
        dx = (output[..., :, 1:] - output[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
        dy = (output[..., 1:, :] - output[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
        loss = loss + config.adjacent_weight * (dx.abs().mean() + dy.abs().mean())
    return loss


# ------------------------------------------------------------------------------------------- training


def validation_score(net, pairs, device: str) -> tuple[float, float]:
    """Mean competition (Score, PSNR) of ``net`` on ``pairs``, on the written-back uint16 mosaics."""
    from bench.evaluation import score_output
    from methods.toolkit.inference import network_input, run_tiled
    from bench.core.rawio import denormalize, unpack

    net.eval()
    scores, psnrs = [], []
    for noisy, clean, profile in pairs:
        out = run_tiled(net, network_input(noisy, profile if net.noise_map else None), tile=0, device=device)
        truth = unpack(denormalize(clean, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL))
        s, _ = score_output(np.clip(out.transpose(1, 2, 0), 0, 1), truth,
                            Levels.of(COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL))
        scores.append(s.score)
        psnrs.append(s.psnr)
    net.train()
    return float(np.mean(scores)), float(np.mean(psnrs))


def train(config: TrainConfig, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) training; returns the path of the best weights file."""
    import torch

    from methods.toolkit.inference import network_input, pick_device

    method = learned_method_class(config.network)  # BenchError naming the networks there are
    check_output_folder(Path(config.out), config.resume, config.overwrite)
    if not config.clean_dirs and config.data is None:
        raise BenchError("give training data: --clean-dir DIR (clean sRGB images) and/or --data DIR (pairs)")
    if config.steps < 1 or config.batch < 1 or config.patch < 16 or config.patch % 8:
        raise BenchError("--steps and --batch must be >= 1 and --patch a multiple of 8, at least 16")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    state = None
    if config.resume:
        if not (out / "last.pt").is_file():
            raise BenchError(f"{out / 'last.pt'}: nothing to resume")
        state = Checkpoint.load(out / "last.pt").training
        if state is None:
            raise BenchError(f"{out / 'last.pt'}: holds weights but no training state to resume")
        saved = dict(state.train_config)
        config = dataclasses.replace(config, net_config=saved["net_config"], batch=saved["batch"],
                                     patch=saved["patch"], lr=saved["lr"], loss=saved["loss"], seed=saved["seed"])
    net_config = {**method.training_config, **config.net_config}
    config = dataclasses.replace(config, net_config=net_config)

    samplers, sources = [], []
    validation_paths: list[Path] = []
    if config.clean_dirs:
        paths = list_images(config.clean_dirs)
        if len(paths) < 2:
            raise BenchError(f"{config.clean_dirs[0]}: needs at least 2 clean images (train + validation)")
        train_paths, validation_paths = split_train_validation(paths)
        samplers.append(SyntheticSampler(train_paths, config.patch, config.max_blur))
        sources.append(f"{len(train_paths)} clean sRGB images from {', '.join(str(d) for d in config.clean_dirs)} "
                       f"(every 10th of {len(paths)} held out for validation), unprocessed to BGGR, "
                       f"blur sigma U(0, {config.max_blur}), a and b log-uniform over {A_RANGE} x {B_RANGE}")
    validation = validation_pairs(validation_paths, config.val_pairs, config.seed) if validation_paths else None
    if config.data is not None:
        pair_sampler = PairSampler(config.data, config.patch, log, config.data_levels)
        samplers.append(pair_sampler)
        sources.append(f"pairs of {config.data}, levels {config.data_levels.describe()} (every 10th held out for "
                       "validation)")
        validation = (validation or []) + pair_sampler.validation_pairs() or None

    torch.manual_seed(config.seed)
    net = build_network(config.network, net_config).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.9))
    total_steps = config.steps

    def cosine(step_done: int) -> float:
        """Learning-rate factor: cosine from 1 to 0.01 over ``total_steps`` (closed form, so a resumed run
        with more steps simply stretches the rest of the curve)."""
        progress = min(step_done / total_steps, 1.0)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    step, best_score, history = 0, -math.inf, []
    if state is not None:
        net.load_state_dict(Checkpoint.load(out / "last.pt").state_dict)
        optimizer.load_state_dict(state.optimizer)
        step, best_score, history = state.step, state.best_score, state.history
        schedule.last_epoch = step
        for group in optimizer.param_groups:
            group["lr"] = config.lr * cosine(step)
        log(f"resumed from {out / 'last.pt'} at step {step}")
    rng = np.random.default_rng([config.seed, step])
    parameters = sum(p.numel() for p in net.parameters())
    log(f"training {config.network} {net_config} ({parameters / 1e6:.2f} M parameters) on {device} for "
        f"{config.steps} steps, batch {config.batch} x {config.patch}^2 packed")

    started, started_step, running = time.perf_counter(), step, []
    net.train()
    while step < config.steps:
        batch = [samplers[int(rng.integers(len(samplers)))].sample(rng) for _ in range(config.batch)]
        inputs = np.stack([network_input(noisy, profile if net_config["noise_map"] else None)
                           for noisy, _, profile in batch])
        targets = np.stack([clean.transpose(2, 0, 1) for _, clean, _ in batch])
        output = net(torch.from_numpy(inputs).to(device))
        loss = training_loss(output, torch.from_numpy(np.ascontiguousarray(targets)).to(device), config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        running.append(loss.item())
        if step % config.log_every == 0 or step == config.steps:
            rate = (step - started_step) / (time.perf_counter() - started)
            eta = (config.steps - step) / max(rate, 1e-9)
            log(f"step {step}/{config.steps}  loss {np.mean(running):.5f}  {rate:.2f} steps/s  "
                f"lr {schedule.get_last_lr()[0]:.2e}  ETA {_duration(eta)}")
            running = []
        if validation is not None and (step % config.val_every == 0 or step == config.steps):
            score, psnr = validation_score(net, validation, device)
            history.append({"step": step, "val_score": score, "val_psnr": psnr})
            improved = score > best_score
            best_score = max(best_score, score)
            log(f"validation at step {step}: Score {score:.3f}, PSNR {psnr:.3f} dB"
                + ("  (best so far, saved)" if improved else ""))
            card = _model_card(config, parameters, step, history, sources, device)
            if improved:
                Checkpoint.of(config.network, net, card).save(out / "best.pth")
                (out / "model_card.md").write_text(_card_markdown(card))
            _save_training_state(out / "last.pt", config, net, optimizer, schedule, step, best_score,
                                 history, card)
    if validation is None:
        card = _model_card(config, parameters, step, history, sources, device)
        Checkpoint.of(config.network, net, card).save(out / "best.pth")
        (out / "model_card.md").write_text(_card_markdown(card))
        _save_training_state(out / "last.pt", config, net, optimizer, schedule, step, best_score,
                             history, card)
    return out / "best.pth"


def _model_card(config: TrainConfig, parameters: int, step: int, history: list[dict], sources: list[str],
                device: str) -> dict:
    best = max(history, key=lambda h: h["val_score"]) if history else None
    return {
        "network": config.network,
        "architecture": {**config.net_config},
        "parameters": parameters,
        "training_data": sources,
        "steps": step,
        "batch": config.batch,
        "patch_packed": config.patch,
        "loss": config.loss, "fourier_weight": config.fourier_weight, "adjacent_weight": config.adjacent_weight,
        "optimizer": f"AdamW lr {config.lr} (cosine to 1%), weight decay {config.weight_decay}, betas (0.9, 0.9)",
        "device": device,
        "validation": ({"step": best["step"], "score": best["val_score"], "psnr": best["val_psnr"],
                        "pairs": config.val_pairs,
                        "what": "competition Score on fixed held-out pairs: 128x128-packed crops of held-out "
                                "clean images (the embedded set's noise groups in turn, true profile) and/or "
                                "central crops of every 10th real pair"} if best else None),
        "git_commit": provenance.git_commit(),
        "written": dt.datetime.now().isoformat(timespec="seconds"),
        "command": provenance.command_line(),
    }


def _card_markdown(card: dict) -> str:
    lines = [f"# Model card: {card['network']}", ""]
    for key, value in card.items():
        lines.append(f"- **{key}**: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return "\n".join(lines) + "\n"


def _save_training_state(path: Path, config: TrainConfig, net, optimizer, schedule, step: int,
                         best_score: float, history: list[dict], card: dict) -> None:
    saved_config = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}
    saved_config["clean_dirs"] = [str(p) for p in config.clean_dirs]
    training = TrainingState(optimizer.state_dict(), schedule.state_dict(), step, best_score, history, saved_config)
    Checkpoint.of(config.network, net, card, training).save(path)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
