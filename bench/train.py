"""``bench train``: train a packed-RAW network (NAFNet or DnCNN) on synthetic and/or real pairs.

Where the pairs come from is ``bench.training_data``: clean sRGB photographs unprocessed to BGGR
(``--clean-dir``), real captures of any Bayer DNG made noisy with the organisers' generator (``--raw-dir``),
and competition-layout folders of real pairs (``--data``), mixed with stated probabilities
(``raw_fraction`` of the patches from the captures, the rest shared by the other sources).

Loss: L1 (default); ``l1_sigma``, the L1 error in units of each pixel's noise standard deviation
``sqrt(a*clean + b)``, so that low-noise samples weigh as much as high-noise ones; or PSNR (per-sample
``10*log10(MSE)``); plus optional Fourier-magnitude and adjacent-pixel (gradient) L1 terms. AdamW with a
cosine learning-rate schedule, from random weights or from a weights file (``init``).

Every ``val_every`` steps the model is scored with the competition Score and PSNR on fixed held-out pairs,
reported per set (``srgb``: every 10th clean image; ``raw``: the held-out captures; ``pairs``: every 10th
real pair) and per noise group, beside a reference method (``reference``, e.g. BM3D, scored once on the same
pairs with the true profile). The checkpoint kept as ``best.pth`` is the one with the best mean PSNR on the
real-raw set when there is one (the closest to real sensor data), else the best mean Score over all pairs;
``last.pt`` (resumable training state), ``best.pth`` (weights + model card) and ``model_card.md`` are
written to the output folder.
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
from bench.core.levels import LevelPolicy, Levels
from bench.core.noise_model import A_RANGE, B_RANGE
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL
from bench.training_data import ValidationPair
from methods.toolkit.checkpoint import Checkpoint, TrainingState
from methods.toolkit.learned import build_network, learned_method_class

LOSSES = ("l1", "l1_sigma", "psnr")


@dataclass
class TrainConfig:
    """Everything a training run needs (``bench train`` fills it from the command line)."""

    network: str
    out: Path
    steps: int = 2000
    clean_dirs: list[Path] = field(default_factory=list)
    data: Path | None = None
    #: Folders of real captures (any Bayer DNG) made noisy on the fly (``bench.real_raw``).
    raw_dirs: list[Path] = field(default_factory=list)
    #: Captures (file stem or name) kept out of training as the real-raw validation set; empty = the last
    #: capture by name, when there are two or more.
    raw_hold_out: list[str] = field(default_factory=list)
    #: Share of the patches drawn from the real captures when other sources are given too (0..1).
    raw_fraction: float = 0.5
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
    #: Chance that a synthetic patch is blurred (sigma U(0, max_blur)); 1 = always, as before.
    blur_probability: float = 1.0
    #: Synthetic crops are taken this many times larger and shrunk (area-averaged) before unprocessing.
    downscale: float = 1.0
    #: Weights file (``.pth``) to start from instead of random weights; its architecture is used.
    init: Path | None = None
    #: A registered method scored once on the validation pairs beside the network ("" = none).
    reference: str = ""
    #: Side, in mosaic pixels, of the central crop of each held-out capture (real-raw validation).
    raw_val_side: int = 512
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


# --------------------------------------------------------------------------------------------- losses


def training_loss(output, target, config: TrainConfig, sigma=None):
    """The configured loss of ``(B, 4, h, w)`` tensors: L1; ``l1_sigma`` (L1 divided by ``sigma``, the
    ``(B, 4, h, w)`` noise standard deviation at the clean values); or PSNR (mean over the batch of
    ``10*log10(MSE)``); plus ``fourier_weight`` x L1 of the 2-D FFT magnitudes and ``adjacent_weight`` x L1
    of horizontal and vertical neighbour differences."""
    import torch

    if config.loss == "psnr":
        mse = ((output - target) ** 2).mean(dim=(1, 2, 3))
        loss = (10.0 * torch.log10(mse + 1e-12)).mean()
    elif config.loss == "l1_sigma":
        if sigma is None:
            raise ValueError("the l1_sigma loss needs the noise standard deviation of every pixel")
        loss = ((output - target).abs() / sigma).mean()
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


def noise_sigma(clean: np.ndarray, profiles) -> np.ndarray:
    """``(B, 4, h, w)`` float32 noise standard deviation ``sqrt(a*x + b)`` at the clean values ``x``
    (``(B, 4, h, w)`` in [0, 1]), one profile per sample; at least 1e-4 so no pixel weighs without bound."""
    a = np.array([p.a for p in profiles], dtype=np.float32)[:, None, None, None]
    b = np.array([p.b for p in profiles], dtype=np.float32)[:, None, None, None]
    return np.maximum(np.sqrt(a * np.clip(clean, 0, 1) + b), np.float32(1e-4)).astype(np.float32)


# ----------------------------------------------------------------------------------------- validation


def _scored(out: np.ndarray, pair: ValidationPair) -> tuple[float, float]:
    """(Score, PSNR) of an ``(h, w, 4)`` output on the written-back uint16 mosaic of ``pair``."""
    from bench.evaluation import score_output
    from bench.core.rawio import denormalize, unpack

    truth = unpack(denormalize(pair.clean, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL))
    s, _ = score_output(np.clip(out, 0, 1), truth, Levels.of(COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL))
    return s.score, s.psnr


def network_scores(net, pairs: list[ValidationPair], device: str) -> list[tuple[float, float]]:
    """(Score, PSNR) of ``net`` on each pair, given the true profile."""
    from methods.toolkit.inference import network_input, run_tiled

    net.eval()
    scores = []
    for pair in pairs:
        out = run_tiled(net, network_input(pair.noisy, pair.profile if net.noise_map else None), tile=0,
                        device=device)
        scores.append(_scored(out.transpose(1, 2, 0), pair))
    net.train()
    return scores


def method_scores(name: str, pairs: list[ValidationPair]) -> list[tuple[float, float]]:
    """(Score, PSNR) of the registered method ``name`` (default parameters, true profile) on each pair."""
    from methods.base import NoisyRaw
    from methods.registry import create_method

    method = create_method(name, {})
    return [_scored(method.denoise(NoisyRaw(pair.noisy[None], "BGGR", lambda p=pair: p.profile, "validation")),
                    pair) for pair in pairs]


def summarise(pairs: list[ValidationPair], scores: list[tuple[float, float]]) -> dict:
    """Mean Score and PSNR per set and noise group: ``{"srgb": {"all": {...}, "0": {...}, ...}, ...}``, each
    ``{"score": mean, "psnr": mean dB, "pairs": count}``."""
    table: dict = {}
    for pair, (score, psnr) in zip(pairs, scores):
        for group in ("all", str(pair.group)) if pair.group >= 0 else ("all",):
            table.setdefault(pair.set, {}).setdefault(group, []).append((score, psnr))
    return {name: {group: {"score": float(np.mean([s for s, _ in values])),
                           "psnr": float(np.mean([p for _, p in values])), "pairs": len(values)}
                   for group, values in sorted(groups.items())}
            for name, groups in table.items()}


def selection_value(summary: dict) -> float:
    """What ``best.pth`` is chosen by: the real-raw set's mean PSNR when there is one, else the mean Score
    over every set (weighted by pairs)."""
    return summary["raw"]["all"]["psnr"] if "raw" in summary else _mean_score(summary)


def validation_score(net, pairs: list[ValidationPair], device: str) -> tuple[float, float]:
    """Mean competition (Score, PSNR) of ``net`` on ``pairs``, on the written-back uint16 mosaics."""
    scores = network_scores(net, pairs, device)
    return float(np.mean([s for s, _ in scores])), float(np.mean([p for _, p in scores]))


# ------------------------------------------------------------------------------------------- training


def _data_sources(config: TrainConfig, log: Callable[[str], None]):
    """The training sampler, the validation pairs and one line per source for the model card."""
    from bench.real_raw import list_captures, load_capture, split_captures
    from bench.training_data import (CaptureSampler, MixedSampler, PairSampler, SyntheticSampler, list_images,
                                     raw_validation_pairs, split_train_validation, srgb_validation_pairs)

    samplers, weights, sources, validation = [], [], [], []
    if config.clean_dirs:
        paths = list_images(config.clean_dirs)
        if len(paths) < 2:
            raise BenchError(f"{config.clean_dirs[0]}: needs at least 2 clean images (train + validation)")
        train_paths, validation_paths = split_train_validation(paths)
        samplers.append(SyntheticSampler(train_paths, config.patch, config.max_blur, config.downscale,
                                         config.blur_probability))
        weights.append(1.0)
        sources.append(f"{len(train_paths)} clean sRGB images from {', '.join(str(d) for d in config.clean_dirs)} "
                       f"(every 10th of {len(paths)} held out for validation), downscaled x{config.downscale} "
                       f"(area), unprocessed to BGGR, blur sigma U(0, {config.max_blur}) with probability "
                       f"{config.blur_probability}, a and b log-uniform over {A_RANGE} x {B_RANGE}")
        validation += srgb_validation_pairs(validation_paths, config.val_pairs, config.seed, config.downscale)
    if config.data is not None:
        pair_sampler = PairSampler(config.data, config.patch, log, config.data_levels)
        samplers.append(pair_sampler)
        weights.append(1.0)
        sources.append(f"pairs of {config.data}, levels {config.data_levels.describe()} (every 10th held out for "
                       "validation)")
        validation += pair_sampler.validation_pairs()
    if config.raw_dirs:
        if not 0.0 <= config.raw_fraction <= 1.0:
            raise BenchError(f"--raw-fraction must be between 0 and 1, not {config.raw_fraction}")
        train_paths, held_out = split_captures(list_captures(config.raw_dirs), config.raw_hold_out)
        captures = [load_capture(path) for path in train_paths]
        held = [load_capture(path) for path in held_out]
        share = config.raw_fraction if samplers else 1.0
        weights = [w * (1.0 - share) / sum(weights) for w in weights]
        samplers.append(CaptureSampler(captures, config.patch))
        weights.append(share)
        sources.append(f"real captures, {share:.0%} of the patches: " + "; ".join(c.describe() for c in captures)
                       + " (organisers' generator at a and b log-uniform over the competition ranges, "
                       "Bayer-preserving flips and transposes)")
        validation += raw_validation_pairs(held, config.raw_val_side, config.seed)
        sources.append("real-raw validation (not trained on): " + "; ".join(c.describe() for c in held)
                       + f", central {config.raw_val_side}x{config.raw_val_side} mosaic at each of the five "
                       "noise groups")
    if not samplers:
        raise BenchError("give training data: --clean-dir DIR (clean sRGB images), --raw-dir DIR (real "
                         "captures) and/or --data DIR (pairs)")
    return MixedSampler(samplers, weights), validation, sources


def train(config: TrainConfig, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) training; returns the path of the best weights file."""
    import torch

    from methods.toolkit.inference import network_input, pick_device

    method = learned_method_class(config.network)  # BenchError naming the networks there are
    check_output_folder(Path(config.out), config.resume, config.overwrite)
    if config.steps < 1 or config.batch < 1 or config.patch < 16 or config.patch % 8:
        raise BenchError("--steps and --batch must be >= 1 and --patch a multiple of 8, at least 16")
    if config.loss not in LOSSES:
        raise BenchError(f"--loss must be one of {', '.join(LOSSES)}, not {config.loss!r}")
    if not config.downscale >= 1.0 or not 0.0 <= config.blur_probability <= 1.0:
        raise BenchError("--downscale must be >= 1 and --blur-probability between 0 and 1")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    out = Path(config.out)
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
    initial = None
    if config.init is not None and state is None:
        initial = Checkpoint.load(Path(config.init))
        if initial.network != config.network:
            raise BenchError(f"{config.init}: holds a {initial.network} network, not {config.network}")
        config = dataclasses.replace(config, net_config=dict(initial.config))
    net_config = {**method.training_config, **config.net_config}
    config = dataclasses.replace(config, net_config=net_config)
    sampler, validation, sources = _data_sources(config, log)
    if config.init is not None:
        sources.append(f"started from the weights of {config.init}")
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(config.seed)
    net = build_network(config.network, net_config).to(device)
    if initial is not None:
        net.load_state_dict(initial.state_dict)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.9))
    total_steps = config.steps

    def cosine(step_done: int) -> float:
        """Learning-rate factor: cosine from 1 to 0.01 over ``total_steps`` (closed form, so a resumed run
        with more steps simply stretches the rest of the curve)."""
        progress = min(step_done / total_steps, 1.0)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    step, best_value, history = 0, -math.inf, []
    if state is not None:
        net.load_state_dict(Checkpoint.load(out / "last.pt").state_dict)
        optimizer.load_state_dict(state.optimizer)
        step, best_value, history = state.step, state.best_score, state.history
        schedule.last_epoch = step
        for group in optimizer.param_groups:
            group["lr"] = config.lr * cosine(step)
        log(f"resumed from {out / 'last.pt'} at step {step}")
    reference = None
    if validation and config.reference:
        started = time.perf_counter()
        reference = summarise(validation, method_scores(config.reference, validation))
        log(f"reference {config.reference} on the validation pairs ({time.perf_counter() - started:.0f} s): "
            + _summary_line(reference))
    rng = np.random.default_rng([config.seed, step])
    parameters = sum(p.numel() for p in net.parameters())
    log(f"training {config.network} {net_config} ({parameters / 1e6:.2f} M parameters) on {device} for "
        f"{config.steps} steps, batch {config.batch} x {config.patch}^2 packed")

    def save(card: dict, improved: bool) -> None:
        if improved:
            Checkpoint.of(config.network, net, card).save(out / "best.pth")
            (out / "model_card.md").write_text(_card_markdown(card))
        _save_training_state(out / "last.pt", config, net, optimizer, schedule, step, best_value, history, card)

    # wall time across resumed runs (validation included) and threads, for validation against CPU-hours
    earlier_seconds = history[-1].get("train_seconds", 0.0) if history else 0.0
    threads = torch.get_num_threads()
    started, started_step, running = time.perf_counter(), step, []
    net.train()
    while step < config.steps:
        batch = [sampler.sample(rng) for _ in range(config.batch)]
        inputs = np.stack([network_input(noisy, profile if net_config["noise_map"] else None)
                           for noisy, _, profile in batch])
        targets = np.ascontiguousarray(np.stack([clean.transpose(2, 0, 1) for _, clean, _ in batch]))
        sigma = torch.from_numpy(noise_sigma(targets, [p for _, _, p in batch])).to(device)
        output = net(torch.from_numpy(inputs).to(device))
        loss = training_loss(output, torch.from_numpy(targets).to(device), config, sigma)
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
        if validation and (step % config.val_every == 0 or step == config.steps):
            summary = summarise(validation, network_scores(net, validation, device))
            value = selection_value(summary)
            history.append({"step": step, "val_score": _mean_score(summary), "val_psnr": _mean_psnr(summary),
                            "selection": value, "summary": summary,
                            "train_seconds": earlier_seconds + time.perf_counter() - started,
                            "threads": threads})
            improved = value > best_value
            best_value = max(best_value, value)
            log(f"validation at step {step}: " + _summary_line(summary) + ("  (best so far, saved)" if improved else ""))
            save(_model_card(config, parameters, step, history, sources, device, reference), improved)
    if not validation:
        save(_model_card(config, parameters, step, history, sources, device, reference), True)
    return out / "best.pth"


def _pair_weighted_mean(summary: dict, metric: str) -> float:
    """``metric`` ("score" or "psnr") averaged over every set of ``summary``, each weighted by its pairs."""
    entries = [groups["all"] for groups in summary.values()]
    return sum(e[metric] * e["pairs"] for e in entries) / sum(e["pairs"] for e in entries)


def _mean_score(summary: dict) -> float:
    return _pair_weighted_mean(summary, "score")


def _mean_psnr(summary: dict) -> float:
    return _pair_weighted_mean(summary, "psnr")


def _summary_line(summary: dict) -> str:
    """``raw 44.10 dB (g0 50.1, g1 ...), srgb ...``: mean PSNR per set and per noise group."""
    parts = []
    for name, groups in summary.items():
        per_group = ", ".join(f"g{g} {v['psnr']:.2f}" for g, v in groups.items() if g != "all")
        parts.append(f"{name} {groups['all']['psnr']:.3f} dB / Score {groups['all']['score']:.3f}"
                     + (f" ({per_group})" if per_group else ""))
    return "; ".join(parts)


def _model_card(config: TrainConfig, parameters: int, step: int, history: list[dict], sources: list[str],
                device: str, reference: dict | None) -> dict:
    best = max(history, key=lambda h: h.get("selection", h["val_score"])) if history else None
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
                        "per_set_and_group": best.get("summary"),
                        "what": "competition Score and PSNR (true profile) per set and noise group: srgb = "
                                "128x128-packed crops of held-out clean images, raw = central crops of the "
                                "held-out real captures, pairs = central crops of every 10th real pair; the "
                                "checkpoint is chosen by the raw set's mean PSNR when there is one"}
                       if best else None),
        "reference": ({"method": config.reference, "per_set_and_group": reference} if reference else None),
        "validation_history": [{k: h[k] for k in ("step", "val_score", "val_psnr", "selection", "train_seconds",
                                                  "threads") if k in h} for h in history],
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
    saved_config["raw_dirs"] = [str(p) for p in config.raw_dirs]  # a weights-only load refuses Path objects
    training = TrainingState(optimizer.state_dict(), schedule.state_dict(), step, best_score, history, saved_config)
    Checkpoint.of(config.network, net, card, training).save(path)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
