"""Bursts: alignment, synthetic and real burst frames, the burst methods, and burst runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from methods.toolkit.align import align_frame
from bench.burst import BurstSpec, frame_motion, packed_frames, synthesize_burst
from bench.datasets import open_dataset
from bench.core.demosaic import demosaic, mosaic_rgb
from bench.core.errors import BenchError
from bench.core.levels import Levels
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.rawio import normalize, pack, write_dng_standalone
from bench.evaluation import load_inputs, make_noisy_raw, noise_for
from bench.runner import RunConfig, run_benchmark
from methods.base import NoisyRaw
from methods.registry import create_method, list_methods
from tests.helpers import smooth_clean_mosaic, write_pair_folder

BURST_METHODS = [name for name in list_methods() if create_method(name).kind == "burst"]
PROFILE = NoiseProfile(4e-3, 2e-4)
COMPETITION = Levels.of(1024, 16383)


def _textured(height: int, width: int, seed: int) -> np.ndarray:
    """A ``(height, width)`` float32 grey image with texture at several scales, in [0, 1]."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((height, width)).astype(np.float32)
    image = cv2.GaussianBlur(noise, (0, 0), 2.0) + 0.5 * cv2.GaussianBlur(noise, (0, 0), 6.0)
    image -= image.min()
    return image / image.max()


def _static_burst(frames: int, seed: int = 0) -> tuple[np.ndarray, NoisyRaw]:
    clean_mosaic = smooth_clean_mosaic(96, 128, seed=5)
    noisy = [add_noise(clean_mosaic, PROFILE.a, PROFILE.b, np.random.default_rng(seed + k), 1024, 16383)
             for k in range(frames)]
    return (normalize(pack(clean_mosaic), 1024, 16383),
            NoisyRaw(packed_frames(np.stack(noisy), COMPETITION), "BGGR", lambda: PROFILE, "test"))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("shift", [(3, -5), (-1, 2), (7, 6)])
def test_alignment_recovers_integer_shifts(shift):
    image = _textured(200, 240, seed=1)
    reference = image[20:180, 20:220]
    frame = np.roll(image, shift, axis=(0, 1))[20:180, 20:220]  # frame[y + dy] = reference[y]
    rng = np.random.default_rng(0)
    found = align_frame(reference + 0.01 * rng.standard_normal(reference.shape).astype(np.float32),
                        frame + 0.01 * rng.standard_normal(frame.shape).astype(np.float32)).shifts
    inner = found[1:-1, 1:-1].reshape(-1, 2)  # border tiles see the wrapped-around edge
    assert np.abs(inner - shift).max() < 0.1


@pytest.mark.parametrize("shift", [(0.5, -0.25), (-1.3, 2.7)])
def test_alignment_recovers_subpixel_shifts(shift):
    import cv2

    image = _textured(200, 240, seed=2)
    move = np.float32([[1, 0, shift[1]], [0, 1, shift[0]]])
    moved = cv2.warpAffine(image, move, (240, 200), flags=cv2.INTER_CUBIC)
    found = align_frame(image[20:180, 20:220], moved[20:180, 20:220]).shifts
    inner = found[1:-1, 1:-1].reshape(-1, 2)
    assert np.abs(np.median(inner, axis=0) - shift).max() < 0.05
    assert np.mean(np.abs(inner - shift).max(axis=1) < 0.1) > 0.9


def test_demosaic_keeps_measured_samples_and_flat_colours():
    rng = np.random.default_rng(0)
    mosaic = rng.random((32, 40))
    rgb = demosaic(mosaic, "BGGR")
    assert np.allclose(mosaic_rgb(rgb, "BGGR"), mosaic)
    flat = mosaic_rgb(np.broadcast_to([0.2, 0.5, 0.3], (32, 40, 3)), "GRBG")
    assert np.allclose(demosaic(flat, "GRBG"), [0.2, 0.5, 0.3])


def test_synthetic_burst_is_seeded_and_starts_with_the_noisy_frame():
    clean = smooth_clean_mosaic(64, 96, seed=1)
    noisy = add_noise(clean, PROFILE.a, PROFILE.b, np.random.default_rng(9), 1024, 16383)
    spec = BurstSpec(4, max_shift=2.0, max_rotation=0.2, seed=3)
    first = synthesize_burst(spec, "7", noisy, clean, "BGGR", PROFILE, COMPETITION)
    again = synthesize_burst(spec, "7", noisy, clean, "BGGR", PROFILE, COMPETITION)
    other = synthesize_burst(spec, "8", noisy, clean, "BGGR", PROFILE, COMPETITION)
    assert first.shape == (4, 64, 96) and first.dtype == np.uint16
    assert np.array_equal(first[0], noisy) and np.array_equal(first, again)
    assert not np.array_equal(first[1:], other[1:])
    assert len({frame_motion(spec, "7", k) for k in range(1, 4)}) == 3
    assert frame_motion(spec, "7", 0).dx == 0


def test_static_synthetic_frames_are_the_ground_truth_plus_fresh_noise():
    clean = smooth_clean_mosaic(64, 96, seed=1)
    noisy = add_noise(clean, PROFILE.a, PROFILE.b, np.random.default_rng(9), 1024, 16383)
    frames = synthesize_burst(BurstSpec(8, 0, 0), "1", noisy, clean, "BGGR", PROFILE, COMPETITION)
    x = normalize(clean, 1024, 16383).astype(np.float64)
    for frame in frames[1:]:
        residual = normalize(frame, 1024, 16383) - x
        assert abs(np.mean(residual ** 2) / np.mean(PROFILE.a * x + PROFILE.b) - 1) < 0.1
    assert not np.array_equal(frames[1], frames[2])


@pytest.mark.parametrize("name", BURST_METHODS)
def test_burst_methods_are_deterministic_and_use_the_frames(name):
    clean, raw = _static_burst(4)
    first = create_method(name).denoise(raw)
    second = create_method(name).denoise(raw)
    assert np.array_equal(first, second)
    single = create_method(name).denoise(raw.reference_only())
    assert _psnr(first, clean) > _psnr(single, clean) + 0.5, f"{name} gains nothing from 3 more frames"


@pytest.mark.parametrize("name", BURST_METHODS)
def test_burst_methods_work_on_a_one_frame_burst(name):
    _, raw = _static_burst(1)
    out = create_method(name).denoise(raw)
    assert out.shape == raw.packed.shape and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


def test_burst_mean_of_a_static_burst_gains_nearly_the_ideal_10log10_n():
    clean, raw = _static_burst(8)
    gain = _psnr(create_method("burst_mean").denoise(raw), clean) - _psnr(raw.packed, clean)
    assert abs(gain - 10 * np.log10(8)) < 0.5


def test_burst_methods_do_not_ghost_a_moving_object():
    clean, raw = _static_burst(6)
    frames = np.array(raw.frames)
    frames[1:, 20:40, 30:50] = 0.95  # a bright object present in every frame but the reference
    moved = NoisyRaw(frames, "BGGR", lambda: PROFILE, "test")
    inside = (slice(24, 36), slice(34, 46))
    assert frames[1:, 24:36, 34:46].mean() - clean[inside].mean() > 0.4  # what a plain mean would keep
    for name, params in [("burst_merge", {"spatial": "none", "guide": "mean"}),
                         ("burst_merge", {"spatial": "none", "guide": "reference"}),
                         ("burst_merge", {"spatial": "none", "resample": "phase"}),
                         ("burst_merge", {"spatial": "none", "resample": "warp"}),
                         ("burst_mean", {}), ("burst_mean", {"resample": "integer"})]:
        out = create_method(name, params).denoise(moved)
        assert abs(float((out[inside] - clean[inside]).mean())) < 0.01, (name, params)


def _flawed_burst() -> tuple[np.ndarray, np.ndarray, NoisyRaw, tuple[slice, slice]]:
    """A static 8-frame burst whose frames 1..N-1 carry a pixel-by-pixel checkerboard of +-2.5 noise std in one
    patch: the clean frame, the ``(8, 48, 64, 4)`` frames, them as a NoisyRaw, and the patch."""
    clean, raw = _static_burst(8)
    frames = np.array(raw.frames)
    inside = (slice(16, 48), slice(24, 64))
    sigma = np.sqrt(PROFILE.a * clean[inside] + PROFILE.b)
    signs = np.where((np.indices(sigma.shape[:2]).sum(axis=0) % 2 == 0), 1.0, -1.0)[..., None]
    frames[1:, inside[0], inside[1]] += (2.5 * sigma * signs).astype(np.float32)
    return clean, frames, NoisyRaw(frames, "BGGR", lambda: PROFILE, "test"), inside


@pytest.mark.parametrize("name", BURST_METHODS)
def test_burst_methods_fall_back_to_the_reference_where_frames_carry_fine_grained_errors(name):
    # frames 1..N-1 carry a pixel-by-pixel checkerboard of +-2.5 noise std in one patch, as a demosaic warp of
    # sharp detail does: its 3x3 mean is small, so the per-pixel agreement test lets it in, and a plain mean
    # would be worse there than the noisy reference. The result must not be.
    clean, frames, flawed, inside = _flawed_burst()
    params = {"spatial": "none"} if name == "burst_merge" else {}
    out = create_method(name, params).denoise(flawed)
    reference_error = float(np.mean((frames[0][inside] - clean[inside]) ** 2))
    assert float(np.mean((out[inside] - clean[inside]) ** 2)) < reference_error
    # and elsewhere the burst still averages
    outside = (slice(0, 16), slice(None))
    assert float(np.mean((out[outside] - clean[outside]) ** 2)) < 0.5 * float(np.mean((frames[0][outside] - clean[outside]) ** 2))


def _add_real_burst(root, frames: int) -> None:
    (root / "burst").mkdir()
    for index in range(3):
        clean = smooth_clean_mosaic(64, 96, seed=index)
        for k in range(1, frames):
            noisy = add_noise(clean, 2e-3, 1e-4, np.random.default_rng(1000 * index + k), 1024, 16383)
            write_dng_standalone(noisy, root / "burst" / f"{index}_noise_{k}.dng")


def test_real_burst_frames_are_loaded_in_order(tmp_path):
    root = write_pair_folder(tmp_path / "pairs")
    _add_real_burst(root, frames=3)
    dataset = open_dataset(root)
    assert [p.name for p in dataset.items[0].burst_paths] == ["0_noise_1.dng", "0_noise_2.dng"]
    loaded = load_inputs(dataset, dataset.items[0], BurstSpec(3))
    raw = make_noisy_raw(loaded, dataset, noise_for(loaded, dataset, "oracle"), BurstSpec(3))
    assert raw.frames.shape == (3, 32, 48, 4)
    assert np.array_equal(raw.frames[0], loaded.pair.noisy.normalized_packed())
    assert len(loaded.hashes) == 4  # noisy, ground truth and the two real frames, each hashed as read
    with pytest.raises(BenchError, match="--burst 4 needs 3 frames"):
        dataset.check_files(burst_frames=4)


def test_a_gap_in_real_burst_frames_is_named(tmp_path):
    root = write_pair_folder(tmp_path / "pairs")
    _add_real_burst(root, frames=4)
    (root / "burst" / "1_noise_2.dng").unlink()
    with pytest.raises(BenchError, match="image 1 has burst frames up to 3 but no frame 2"):
        open_dataset(root)


def test_burst_run_keeps_single_frame_rows_and_records_the_burst(tmp_path):
    root = write_pair_folder(tmp_path / "pairs")
    dataset = open_dataset(root)
    plain = run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path / "plain", noise_mode="oracle"),
                          log=lambda message: None)
    burst = run_benchmark(RunConfig(["noisy", "burst_mean"], dataset, out_root=tmp_path / "burst",
                                    noise_mode="oracle", burst=BurstSpec(4)), log=lambda message: None)
    rows = burst.summary.set_index("method")
    assert rows.loc["noisy", "psnr"] == pytest.approx(plain.summary.set_index("method").loc["noisy", "psnr"])
    assert rows.loc["burst_mean", "psnr"] > rows.loc["noisy", "psnr"] + 3
    record = json.loads((burst.run_dir / "run.json").read_text())
    assert record["burst"]["frames"] == 4 and record["burst"]["seed"] == BurstSpec(4).seed
    assert "4-frame bursts" in (burst.run_dir / "summary.md").read_text()


# --- detail-keeping synthesis and whole-cell merging (issue: bursts that keep detail) ----------------------


def _photograph(height: int = 192, width: int = 256) -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()[:height, :width].astype(np.float64) / 255.0


def test_fourier_motion_moved_and_moved_back_is_the_original():
    """The band-limited motion is undone to an RMS of 3e-3 of the range 16 px inside the border; cubic
    resampling (the former synthesis) is several times worse, since it low-passes at every step."""
    from bench.burst import FrameMotion, move_image, move_image_cubic

    photo = _photograph()

    def round_trip_rms(move) -> float:
        there = move(photo, FrameMotion(-0.7, 1.3, 0.1))
        back = move(move(there, FrameMotion(0.7, -1.3, 0.0)), FrameMotion(0.0, 0.0, -0.1))
        return float(np.sqrt(np.mean((back - photo)[16:-16, 16:-16] ** 2)))

    fourier, cubic = round_trip_rms(move_image), round_trip_rms(move_image_cubic)
    assert fourier < 3e-3 and cubic > 3 * fourier, (fourier, cubic)


def test_fourier_motion_by_whole_pixels_is_an_exact_shift():
    from bench.burst import FrameMotion, move_image

    photo = _photograph()
    moved = move_image(photo, FrameMotion(2.0, -4.0, 0.0))
    np.testing.assert_allclose(moved[8:-8, 8:-8], photo[6:-10, 12:-4], atol=1e-9)


def test_fourier_motion_agrees_with_the_cubic_one_on_smooth_content():
    """Same motion convention (shift, then OpenCV's sense of rotation) as the former synthesis."""
    from bench.burst import FrameMotion, move_image, move_image_cubic

    ys, xs = np.mgrid[0:160, 0:224]
    smooth = np.stack([np.sin(xs / 9.0 + ys / 13.0), np.cos(xs / 7.0), np.sin(ys / 11.0)], -1) * 0.3 + 0.5
    motion = FrameMotion(-0.6, 1.4, 0.4)
    assert np.abs(move_image(smooth, motion) - move_image_cubic(smooth, motion))[24:-24, 24:-24].max() < 0.01


def test_whole_cell_merge_with_the_true_motion_equals_the_static_merge_inside():
    """Frames moved by whole CFA cells and merged at their true displacement (tiles cut at the displaced
    place, no resampling) give the merge of the same frames unmoved, away from the borders."""
    from bench.burst_study import shift_exact
    from methods.burst_merge import merge_tiles

    rng = np.random.default_rng(4)
    frames = rng.random((4, 48, 64, 4)) * 0.5 + 0.2
    shifts = [(0, 0), (1, -1), (-1, 0), (0, 1)]  # packed pixels
    moved = np.stack([shift_exact(f, dy, dx) for f, (dy, dx) in zip(frames, shifts)])
    fields = np.stack([np.broadcast_to(np.array([dy, dx], np.float32), (48, 64, 2)) for dy, dx in shifts])
    profile = NoiseProfile(1e-3, 1e-5)
    static, _ = merge_tiles(frames, profile, 3.0, 0.0, fields=np.zeros_like(fields))
    merged, _ = merge_tiles(moved, profile, 3.0, 0.0, fields=fields)
    np.testing.assert_allclose(merged[16:-16, 16:-16], static[16:-16, 16:-16], atol=1e-9)


def test_take_whole_cells_moves_by_the_rounded_field():
    from methods.burst_mean import take_whole_cells

    frame = np.arange(6 * 8 * 4, dtype=np.float32).reshape(6, 8, 4)
    field = np.broadcast_to(np.array([0.6, -1.4], np.float32), (6, 8, 2))
    out = take_whole_cells(frame, field)
    np.testing.assert_array_equal(out[1:-1, 1:-1], frame[2:, :-2][:4, :6])


@pytest.fixture
def detailed_folder(tmp_path):
    """Two detailed scenes (bench.detailed_scenes) written as a pair folder with their linear scenes."""
    import cv2

    from bench.detailed_scenes import detailed_scenes, write_detailed_set

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        ys, xs = np.mgrid[0:96, 0:128]
        image = 127 + 100 * np.sin(xs / (3.0 + k))[..., None] * np.cos(ys / 5.0)[..., None] + rng.normal(0, 5, (96, 128, 3))
        cv2.imwrite(str(photos / f"{k}.png"), np.clip(image, 0, 255).astype(np.uint8))
    write_detailed_set(detailed_scenes([photos], 2), tmp_path / "set")
    return tmp_path / "set"


def test_moving_bursts_of_a_folder_move_its_linear_scene_and_key_on_its_bytes(detailed_folder):
    from bench.evaluation import input_paths, load_inputs

    dataset = open_dataset(detailed_folder)
    item = dataset.items[0]
    spec = BurstSpec(4)
    assert input_paths(dataset, item, spec)[-1].name == "0_linear.npy"
    assert input_paths(dataset, item, BurstSpec(4, max_shift=0, max_rotation=0))[-1].name == "0_gt.dng"
    loaded = load_inputs(dataset, item, spec)
    assert len(loaded.hashes) == 3 and loaded.clean_linear.shape == (*loaded.pair.gt.mosaic.shape, 3)
    scene = np.load(detailed_folder / "linear" / "0_linear.npy")
    np.save(detailed_folder / "linear" / "0_linear.npy", np.clip(scene * 0.9, 0, 1))
    assert load_inputs(dataset, item, spec).hashes[2] != loaded.hashes[2]  # another scene, another cache key


def test_a_damaged_linear_scene_is_named(detailed_folder):
    from bench.evaluation import load_inputs

    (detailed_folder / "linear" / "1_linear.npy").write_bytes(b"not numpy")
    dataset = open_dataset(detailed_folder)
    with pytest.raises(BenchError, match="1_linear.npy: not a readable .npy linear scene"):
        load_inputs(dataset, dataset.items[1], BurstSpec(4))


def test_burst_run_on_a_folder_with_linear_scenes(detailed_folder, tmp_path):
    from tests.test_cli import bench

    result = bench("run", "--data", str(detailed_folder), "--methods", "noisy,burst_mean", "--burst", "4",
                   "--noise", "oracle", "--workers", "1", "--out", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    rows = (next((tmp_path / "runs").glob("*/*")) / "per_image.csv").read_text().splitlines()[1:]
    assert len(rows) == 4 and all(",ok," in row for row in rows), rows


def _detailed_burst(frames: int = 8, profile: NoiseProfile = NoiseProfile(1e-4, 1e-6)) -> tuple[np.ndarray, np.ndarray]:
    """A burst (default camera motion) of a detailed scene at the lowest noise group: scikit-image's astronaut,
    a 192x256 crop unprocessed like the embedded set but without its lens blur (as ``bench.detailed_scenes``
    does). ``(frames, 96, 128, 4)`` float32 noisy frames and the ``(96, 128, 4)`` clean frame 0."""
    import skimage.data

    from bench.burst import move_image
    from bench.core.rawio import pack_normalized
    from bench.embedded import unprocess

    srgb = skimage.data.astronaut()[100:292, 150:406].astype(np.float64) / 255.0
    linear, _ = unprocess(srgb, np.random.default_rng(1))
    spec = BurstSpec(frames)
    noisy = []
    for k in range(frames):
        scene = linear if k == 0 else move_image(linear, frame_motion(spec, "astronaut", k))
        clean = COMPETITION.denormalize(np.clip(mosaic_rgb(scene, "BGGR"), 0.0, 1.0))
        noisy.append(pack_normalized(add_noise(clean, profile.a, profile.b, np.random.default_rng(k), 1024, 16383),
                                     1024, 16383))
    clean0 = normalize(pack(COMPETITION.denormalize(np.clip(mosaic_rgb(linear, "BGGR"), 0.0, 1.0))), 1024, 16383)
    return np.stack(noisy).astype(np.float32), clean0


def _variance_error(profile: NoiseProfile, true: NoiseProfile, levels: np.ndarray) -> float:
    """Mean relative error of the noise variance ``profile`` predicts at ``levels``."""
    levels = levels.astype(np.float64)
    return float(np.mean(np.abs((profile.a - true.a) * levels + profile.b - true.b) / (true.a * levels + true.b)))


def test_a_burst_estimates_its_noise_where_one_frame_cannot():
    from bench.core.noise import estimate_noise
    from methods.toolkit.align import burst_fields, warp_mosaic
    from methods.toolkit.burst_noise import burst_noise_profile

    true = NoiseProfile(1e-4, 1e-6)
    frames, _ = _detailed_burst(profile=true)
    fields = burst_fields(frames)
    warped = np.stack([frames[0]] + [warp_mosaic(f, d, "BGGR") for f, d in zip(frames[1:], fields[1:])])
    burst = burst_noise_profile(frames, warped, fields, "BGGR")
    single = estimate_noise(frames[0])
    # measured: frame 0 alone takes detail for noise (variance 56 % off on average); the differences between
    # the aligned frames and frame 0 are mostly noise (13 % off)
    assert _variance_error(single, true, frames[0]) > 0.4
    assert _variance_error(burst, true, frames[0]) < 0.25, burst


@pytest.mark.parametrize("name", ["burst_mean", "burst_merge"])
def test_burst_methods_re_estimate_a_blind_profile_from_the_burst(name):
    from bench.core.noise import estimate_noise

    frames, clean = _detailed_burst()
    blind = estimate_noise(frames[0])  # source "estimate", as a blind run gives it
    raw = NoisyRaw(frames, "BGGR", lambda: blind, "astronaut")
    params = {"spatial": "none"} if name == "burst_merge" else {}
    errors = {choice: float(np.mean((create_method(name, {**params, "blind_noise": choice}).denoise(raw) - clean) ** 2))
              for choice in ("burst", "reference")}
    # measured: burst_mean 0.7x, burst_merge (before its spatial stage) 0.97x the error with frame 0's profile
    assert errors["burst"] < errors["reference"], errors


def test_a_true_profile_is_never_re_estimated():
    from methods.toolkit.burst_noise import profile_of_burst

    frames, _ = _detailed_burst(frames=3)
    true = NoiseProfile(1e-4, 1e-6, "oracle")
    raw = NoisyRaw(frames, "BGGR", lambda: true, "astronaut")
    assert profile_of_burst(raw, np.zeros((3, 96, 128, 2), dtype=np.float32)) is true


def test_warp_fidelity_scores_the_demosaic_warp_below_the_rgb_warp_and_above_on_smooth_scenes():
    from bench.burst_study import Scene, fidelity_markdown, warp_fidelity

    rng = np.random.default_rng(3)
    smooth = np.stack([_textured(96, 128, seed) for seed in (1, 2, 3)], axis=-1).astype(np.float64) * 0.8
    sharp = np.clip(smooth + 0.2 * rng.random(smooth.shape), 0.0, 1.0)  # detail at the pixel scale
    gt = np.zeros((96, 128), dtype=np.uint16)
    rows = warp_fidelity([Scene("smooth", smooth, gt, NoiseProfile(1e-3, 1e-5)),
                          Scene("sharp", sharp, gt, NoiseProfile(1e-3, 1e-5))], BurstSpec(4))
    smooth_row, sharp_row = rows
    # the demosaic is the larger error; pixel-scale detail makes both far worse
    assert smooth_row["RGB warp"] > smooth_row["demosaic warp"] > sharp_row["demosaic warp"] + 5
    assert smooth_row["demosaic warp"] > smooth_row["noise"] > sharp_row["demosaic warp"]
    assert "| mean |" in fidelity_markdown(rows, "two scenes")


def test_burst_merge_ends_failed_windows_as_single_frame_bm3d():
    # the fine-grained-error burst above: in the patch the merge cannot use frames 1..N-1
    clean, frames, flawed, inside = _flawed_burst()
    single = create_method("bm3d").denoise(NoisyRaw(frames[:1], "BGGR", lambda: PROFILE, "test"))

    def error(out, where):
        return float(np.mean((out[where] - clean[where]) ** 2))

    outputs = {target: create_method("burst_merge", {"fallback_target": target, "reconstruct_share": 0.0}).denoise(flawed)
               for target in ("bm3d", "reference")}
    # measured: 8.8e-5 against 9.7e-5 with the reference as target, single-frame BM3D 8.4e-5
    assert error(outputs["bm3d"], inside) < 0.95 * error(outputs["reference"], inside)
    assert error(outputs["bm3d"], inside) < 1.1 * error(single, inside)
    outside = (slice(0, 16), slice(None))  # where the frames merge, the merge still wins by far
    assert error(outputs["bm3d"], outside) < 0.5 * error(single, outside)
