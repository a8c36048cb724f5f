"""The embedded default dataset: competition-layout DNG pairs built from scikit-image's photographs.

Built deterministically (fixed seeds, no network) on first use and cached in the user's cache directory
(``$RAW_BENCH_CACHE``, else ``$XDG_CACHE_HOME/raw-bench``, else ``~/.cache/raw-bench``). A checksum
manifest is checked on every use; a missing or mismatching file triggers a rebuild.

Recipe, per image:
1. crop a colour photograph shipped with scikit-image (table ``SOURCES``);
2. unprocess sRGB to linear camera RGB (Brooks et al. 2019): inverse tone curve, inverse gamma,
   inverse colour matrix, inverse white-balance and brightness gains with highlights protected;
   then a slight optical blur (``OPTICAL_BLUR_SIGMA``) that removes most of the photograph's own grain;
3. mosaic to BGGR and store as the 16-bit ground truth (black 1024, white 16383);
4. add noise with the organisers' generator at the image's noise group: five groups, (a, b) log-spaced
   over a in [1e-4, 1e-2] and b in [1e-6, 1e-3], three images each. The true (a, b) go to
   ``noise_profile.csv``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bench.datasets import GT_DIR, NOISE_PROFILE_FILE, NOISY_DIR, Dataset, open_dataset, write_noise_profiles
from bench.core.files import file_sha256
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, denormalize, unpack, write_dng_standalone

RECIPE_VERSION = 2
DATASET_NAME = "embedded"
MANIFEST_FILE = "MANIFEST.sha256"
SEED = 20220
#: (scikit-image loader, top, left, height, width) of each image, in image-id order. Three consecutive
#: images share a noise group; the order spreads kinds of content over the groups.
SOURCES = (
    ("astronaut", 0, 0, 256, 512),
    ("hubble_deep_field", 0, 0, 436, 500),
    ("stereo_motorcycle:0", 0, 0, 500, 740),
    ("coffee", 0, 0, 400, 300),
    ("retina", 200, 450, 512, 512),
    ("rocket", 0, 0, 426, 320),
    ("chelsea", 0, 0, 300, 450),
    ("immunohistochemistry", 0, 0, 256, 512),
    ("stereo_motorcycle:1", 0, 0, 500, 740),
    ("astronaut", 256, 0, 256, 512),
    ("hubble_deep_field", 436, 500, 436, 500),
    ("rocket", 0, 320, 426, 320),
    ("coffee", 0, 300, 400, 300),
    ("retina", 712, 450, 512, 512),
    ("immunohistochemistry", 256, 0, 256, 512),
)
IMAGES_PER_GROUP = 3
GROUP_A = tuple(float(v) for v in np.logspace(-4, -2, 5))
GROUP_B = tuple(float(v) for v in np.logspace(-6, -3, 5))
#: Standard deviation, in pixels, of the Gaussian "lens" blur applied to the linear image before mosaicking.
#: The 8-bit photographs carry their own grain, which would otherwise stay in the ground truth as noise
#: that no denoiser should keep and that a noise estimator cannot tell from the added noise; the blur
#: lowers its standard deviation about 3.5-fold (real optics are not sharp at the pixel level either).
OPTICAL_BLUR_SIGMA = 1.0
#: A typical phone camera-to-sRGB colour matrix (rows sum to 1, so grey stays grey); its inverse takes
#: sRGB-primaries linear values back to camera space.
CAM_TO_SRGB = np.array([[1.72, -0.61, -0.11], [-0.26, 1.56, -0.30], [0.02, -0.52, 1.50]])


def cache_root() -> Path:
    """The user's cache folder for this suite."""
    if os.environ.get("RAW_BENCH_CACHE"):
        return Path(os.environ["RAW_BENCH_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "raw-bench"


def embedded_dataset(log=print) -> Dataset:
    """Open the embedded dataset, building it first when it is missing or fails its manifest check."""
    folder = cache_root() / f"{DATASET_NAME}-v{RECIPE_VERSION}"
    problem = manifest_problem(folder)
    if problem is not None:
        log(f"building the embedded dataset in {folder} ({problem}); this happens once")
        build(folder)
    return dataclasses.replace(open_dataset(folder, name=DATASET_NAME), clean_linear=_clean_linear_of,
                               origin="embedded")


def manifest_problem(folder: Path) -> str | None:
    """None when every file in ``folder``'s manifest exists with the recorded checksum, else why not."""
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return "not built yet" if not folder.exists() else "manifest missing"
    entries = [line.split("  ", 1) for line in manifest.read_text(errors="replace").splitlines()]
    if len(entries) < 2 * len(SOURCES) + 2 or any(len(entry) != 2 for entry in entries):
        return "manifest damaged"
    for digest, name in entries:
        path = folder / name
        if not path.is_file():
            return f"{name} missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def build(folder: Path) -> None:
    """Build the dataset into ``folder`` (replacing what is there), atomically via a temporary folder."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".building-"))
    try:
        _build_into(staging)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def clean_linear_rgb(index: int) -> tuple[np.ndarray, dict[str, float]]:
    """Steps 1-2 of the recipe for image ``index``: the clean linear camera RGB ``(H, W, 3)`` float64 in
    [0, 1] whose BGGR mosaic is the ground truth, and the gains drawn for it. Deterministic."""
    from scipy.ndimage import gaussian_filter

    source, top, left, height, width = SOURCES[index]
    rgb = _load_source(source)[top : top + height, left : left + width]
    linear, gains = unprocess(rgb.astype(np.float64) / 255.0, np.random.default_rng([SEED, index, 0]))
    linear = gaussian_filter(linear, sigma=(OPTICAL_BLUR_SIGMA, OPTICAL_BLUR_SIGMA, 0), mode="reflect")
    return linear, gains


def _clean_linear_of(image_id: str) -> np.ndarray:
    """The ground truth's linear RGB by image id (what synthetic bursts move; see ``Dataset.clean_linear``)."""
    return clean_linear_rgb(int(image_id))[0]


def _build_into(folder: Path) -> None:
    (folder / GT_DIR).mkdir()
    (folder / NOISY_DIR).mkdir()
    profiles: dict[str, NoiseProfile] = {}
    recipe = []
    for index, (source, top, left, height, width) in enumerate(SOURCES):
        group = index // IMAGES_PER_GROUP
        a, b = GROUP_A[group], GROUP_B[group]
        linear, gains = clean_linear_rgb(index)
        gt = denormalize(mosaic_bggr(linear), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
        noisy = add_noise(gt, a, b, np.random.default_rng([SEED, index, 1]),
                          COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
        write_dng_standalone(gt, folder / GT_DIR / f"{index}_gt.dng")
        write_dng_standalone(noisy, folder / NOISY_DIR / f"{index}_noise.dng")
        profiles[str(index)] = NoiseProfile(a, b)
        recipe.append({"image": str(index), "source": source, "crop": [top, left, height, width],
                       "group": group, "a": a, "b": b, **gains})
    write_noise_profiles(folder / NOISE_PROFILE_FILE, profiles)
    (folder / "recipe.json").write_text(json.dumps({"version": RECIPE_VERSION, "seed": SEED, "images": recipe}, indent=1))
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    lines = [f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}" for p in files]
    (folder / MANIFEST_FILE).write_text("\n".join(lines) + "\n")


def _load_source(spec: str) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 photograph from ``skimage.data``; ``name:k`` takes item k of a tuple."""
    import skimage.data

    name, _, item = spec.partition(":")
    image = getattr(skimage.data, name)()
    if item:
        image = image[int(item)]
    return np.asarray(image)[..., :3]


def unprocess(srgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """sRGB ``(H, W, 3)`` float in [0, 1] -> plausible linear camera RGB ``(H, W, 3)`` in [0, 1].

    Returns the image and the gains drawn from ``rng``: red gain in [1.9, 2.4], blue gain in [1.5, 1.9],
    brightness from N(0.8, 0.1) (clamped to [0.5, 1.1]).
    """
    red_gain = rng.uniform(1.9, 2.4)
    blue_gain = rng.uniform(1.5, 1.9)
    brightness = float(np.clip(rng.normal(0.8, 0.1), 0.5, 1.1))

    x = np.clip(srgb, 0.0, 1.0)
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)  # undo the smoothstep tone curve
    x = np.maximum(x, 1e-8) ** 2.2  # undo gamma
    x = np.clip(x @ np.linalg.inv(CAM_TO_SRGB).T, 0.0, 1.0)  # back to camera colour space

    # Undo white balance and exposure. Near-white pixels keep gains closer to 1 so that highlights do not
    # turn coloured: the blend weight rises from 0 at grey level 0.9 to 1 at 1.
    inverse_gains = np.array([1.0 / red_gain, 1.0, 1.0 / blue_gain]) * brightness
    grey = x.mean(axis=-1, keepdims=True)
    highlight = (np.maximum(grey - 0.9, 0.0) / 0.1) ** 2
    safe_gains = np.maximum(highlight + (1.0 - highlight) * inverse_gains, inverse_gains)
    linear = np.clip(x * safe_gains, 0.0, 1.0)
    return linear, {"red_gain": float(red_gain), "blue_gain": float(blue_gain), "brightness": brightness}


def mosaic_bggr(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` linear RGB -> ``(H, W)`` BGGR mosaic (B at even/even, R at odd/odd)."""
    packed = np.stack([rgb[0::2, 0::2, 2], rgb[0::2, 1::2, 1], rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 0]], axis=-1)
    return unpack(packed)
