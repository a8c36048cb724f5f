"""The crop section of the report: for the hardest, a median and the easiest image, the noisy input, every
method and the ground truth, rendered by the simple ISP (``bench.report.rendering``).

Each image's crops come, in this order, from the run's ``crops.npz`` (cut by ``bench run`` from the outputs
it scored; nothing is read or run again), from the dataset with the run's saved outputs
(``outputs/<method>/<image>.dng``, ``--save-outputs``), or from the dataset with each method run again with
the parameters and noise mode of ``run.json`` (older run folders). The section's notes say which. Nothing
here raises for a dataset or method problem: they become notes and placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from bench.core.errors import BenchError
from bench.core.files import file_sha256
from bench.report.load import RunFolder, method_kind, one_line
from bench.report.rendering import MosaicCrop, png_base64
from bench.report.saved_crops import CROPS_FILE, ImageCrops, image_crops, read_run_crops
from bench.report.statistics import choose_crop_images
from bench.run_record import MethodRecord, RunRecord

#: The dataset fingerprint is checked only when the run's files add up to at most this many bytes.
FINGERPRINT_CHECK_MAX_BYTES = 2_000_000_000


@dataclass
class Panel:
    """One crop on the page: a title, a caption line, and either a PNG (base64) or a placeholder text."""

    title: str
    caption: str
    png_base64: str | None = None
    placeholder: str = ""


@dataclass
class CropRow:
    """The panels of one image: why it was chosen, where the crop lies, and the overview thumbnail."""

    image_id: str
    role: str
    window: tuple[int, int, int, int]
    overview_base64: str
    panels: list[Panel] = field(default_factory=list)


@dataclass
class CropSection:
    rows: list[CropRow]
    notes: list[str]


def open_run_dataset(record: RunRecord):
    """The dataset a run used, with the level policy it read its files with, or raise BenchError saying why
    it cannot be opened."""
    import dataclasses

    from bench import embedded
    from bench.datasets import open_dataset

    info = record.dataset
    policy = record.level_policy()
    if info.origin == "embedded":
        return dataclasses.replace(embedded.embedded_dataset(log=lambda message: None), levels=policy)
    return open_dataset(info.root, name=info.name, black_level=info.black_level, white_level=info.white_level,
                        levels=policy.mode)


def _burst_spec(record: RunRecord):
    """The BurstSpec a run used, or None for a one-frame run."""
    return record.burst.spec() if record.burst else None


def fingerprint_note(record: RunRecord, dataset, image_ids: list[str]) -> str:
    """Whether the dataset files of the run's images hash to the run's recorded fingerprint (one sentence)."""
    from bench.datasets import fingerprint

    expected = record.dataset_fingerprint
    if not expected:
        return "The run recorded no dataset fingerprint, so it is not checked that these are the files it scored."
    items = {item.image_id: item for item in dataset.items}
    extra_frames = record.burst.frames - 1 if record.burst and dataset.has_real_bursts else 0
    paths = []
    for image_id in image_ids:
        item = items.get(image_id)
        if item is None:
            return f"The dataset has no image {image_id}, so it is not the one the run scored."
        paths += [item.noisy_path, item.gt_path, *item.burst_paths[:extra_frames]]
    total = sum(path.stat().st_size for path in paths if path is not None and path.is_file())
    if total > FINGERPRINT_CHECK_MAX_BYTES:
        return f"The dataset fingerprint was not checked ({total / 1e9:.1f} GB of files)."
    hashes = []
    for path in paths:
        if path is None or not path.is_file():
            return f"{path}: missing, so the dataset is not the one the run scored."
        try:
            relative = path.relative_to(dataset.root).as_posix()
        except ValueError:
            relative = str(path)
        hashes.append((relative, file_sha256(path)))
    if fingerprint(hashes) == expected:
        return "The dataset files match the fingerprint recorded in run.json."
    return ("Warning: the dataset files differ from those the run scored (fingerprint mismatch), so the noisy, "
            "ground-truth and re-created crops may not show what was scored.")


class _RunDataset:
    """The run's dataset, opened when first needed, and each image's inputs, read at most once."""

    def __init__(self, record: RunRecord):
        self.record = record
        self._dataset = None
        self.problem: str | None = None
        self._loaded: dict = {}

    def get(self):
        """The dataset, or BenchError("the run's dataset cannot be opened (...)")."""
        if self._dataset is None and self.problem is None:
            try:
                self._dataset = open_run_dataset(self.record)
            except BenchError as exc:
                self.problem = str(exc)
            except Exception as exc:  # a damaged dataset must not take the rest of the report down
                self.problem = one_line(exc)
        if self.problem is not None:
            raise BenchError(f"the run's dataset cannot be opened ({self.problem})")
        return self._dataset

    def method_input(self, image_id: str):
        """The NoisyRaw the run gave methods for this image (same noise mode and burst), made once."""
        from bench.evaluation import make_noisy_raw, noise_for

        key = ("method input", image_id)
        if key not in self._loaded:
            loaded, dataset = self.inputs(image_id), self.get()
            noise = noise_for(loaded, dataset, self.record.noise)
            self._loaded[key] = make_noisy_raw(loaded, dataset, noise, _burst_spec(self.record))
        return self._loaded[key]

    def inputs(self, image_id: str):
        """The LoadedInputs of one image (BenchError when the dataset lacks it or it cannot be read)."""
        from bench.evaluation import load_inputs

        if image_id not in self._loaded:
            dataset = self.get()
            item = next((item for item in dataset.items if item.image_id == image_id), None)
            if item is None:
                raise BenchError(f"image {image_id} is not in the dataset at {dataset.root}")
            self._loaded[image_id] = load_inputs(dataset, item, _burst_spec(self.record))
        return self._loaded[image_id]


def build_crops(folder: RunFolder, methods: list[str], log: Callable[[str], None]) -> CropSection:
    """The crop rows of the page; never raises for a dataset or method problem (they become notes and
    placeholders)."""
    references = {m for m in methods if method_kind(folder, m) == "reference"}
    chosen = choose_crop_images(folder.per_image, references)
    if not chosen:
        return CropSection([], ["No image has a successful result, so there are no crops."])
    notes: list[str] = []
    try:
        saved = read_run_crops(folder.path) or {}
    except BenchError as exc:
        saved = {}
        notes.append(f"{exc}; the crops are made from the dataset instead.")
    dataset = _RunDataset(folder.record)
    if any(image_id not in saved for _, image_id in chosen):
        try:
            dataset.get()
        except BenchError as exc:
            if not saved:
                return CropSection([], [*notes, f"Crops are missing: {exc}."])
            notes.append(f"Some crops are missing: {exc}.")
        else:
            try:
                notes.append(fingerprint_note(folder.record, dataset.get(),
                                              list(dict.fromkeys(folder.per_image["image"]))))
            except OSError as exc:
                notes.append(f"The dataset fingerprint could not be checked ({one_line(exc)}).")
    from_run = [image_id for _, image_id in chosen if image_id in saved]
    if from_run:
        which = "" if len(from_run) == len(chosen) else f" of image{'s' * (len(from_run) > 1)} {', '.join(from_run)}"
        notes.append(f"The noisy and ground-truth crops{which} were cut by the run from the files it scored "
                     f"({CROPS_FILE}).")
    rows_by_key = {(row.method, row.image): row for row in folder.per_image.itertuples()}
    created_methods: dict[str, object] = {}
    sources = {"run": 0, "saved": 0, "re-created": 0}
    psnr_gaps: list[float] = []
    rows = []
    for role, image_id in chosen:
        image = saved.get(image_id)
        if image is None:
            if dataset.problem is not None:
                continue
            ds = dataset.get()
            if image_id not in {item.image_id for item in ds.items}:
                notes.append(f"Image {image_id} ({role}) is not in the dataset at {ds.root}; no crop.")
                continue
            try:
                pair = dataset.inputs(image_id).pair
            except Exception as exc:
                notes.append(f"Image {image_id} ({role}) could not be read ({one_line(exc)}); no crop.")
                continue
            image = image_crops(image_id, role, pair.noisy.mosaic, pair.gt.mosaic, pair.gt.cfa, pair.gt.levels)
        row = CropRow(image_id, role, image.window, png_base64(image.overview))
        row.panels.append(Panel("noisy input", "the dataset's noisy file", png_base64(image.render(image.noisy))))
        for method in methods:
            result = rows_by_key.get((method, image_id))
            if result is None:
                row.panels.append(Panel(method, "", placeholder="not run on this image"))
                continue
            caption = (f"Score {result.score:.2f} · {result.psnr:.2f} dB" if result.status == "ok" else "")
            if result.status != "ok":
                row.panels.append(Panel(method, "", placeholder=f"failed in the run: {result.error}"))
                continue
            try:
                crop = _method_crop(folder, dataset, image, method, created_methods, sources, psnr_gaps, log,
                                    float(result.psnr))
                row.panels.append(Panel(method, caption, png_base64(image.render(crop))))
            except Exception as exc:  # one method's trouble gives a placeholder, never a crash
                row.panels.append(Panel(method, caption, placeholder=f"no image: {one_line(exc)}"))
        row.panels.append(Panel("ground truth", "the dataset's clean file", png_base64(image.render(image.gt))))
        rows.append(row)
    notes.insert(0, _source_note(sources, psnr_gaps, folder.record.noise))
    return CropSection(rows, notes)


def _method_crop(folder: RunFolder, dataset: _RunDataset, image: ImageCrops, method: str,
                 created_methods: dict[str, object], sources: dict[str, int], psnr_gaps: list[float],
                 log: Callable[[str], None], recorded_psnr: float) -> MosaicCrop:
    """One method's crop of ``image``: from the run's crops, else its saved output, else re-created."""
    from bench.core.rawio import read_dng
    from bench.evaluation import evaluate

    if method in image.methods:
        sources["run"] += 1
        return image.methods[method]
    saved = folder.path / "outputs" / method / f"{image.image_id}.dng"
    if saved.is_file():
        mosaic = read_dng(saved).mosaic
        if mosaic.shape != image.shape:
            raise BenchError(f"{saved}: size {mosaic.shape} differs from the image's {image.shape}")
        sources["saved"] += 1
        return MosaicCrop.cut(mosaic, image.window)
    if method not in created_methods:
        created_methods[method] = _create_method(method, folder.record.methods.get(method))
    created = created_methods[method]
    if isinstance(created, str):
        raise BenchError(created)
    loaded = dataset.inputs(image.image_id)
    log(f"report: re-running {method} on image {image.image_id} for its crop")
    evaluation = evaluate(created, dataset.method_input(image.image_id), loaded.pair.gt.mosaic,
                          loaded.pair.noisy.levels)
    sources["re-created"] += 1
    psnr_gaps.append(abs(evaluation.scores.psnr - recorded_psnr))
    return MosaicCrop.cut(evaluation.mosaic, image.window)


def _create_method(name: str, recorded: MethodRecord | None):
    """The method object the run used, or a one-line reason why it cannot be made or run here."""
    from methods.registry import create_method

    try:
        method = create_method(name, recorded.params if recorded else {})
    except Exception as exc:
        return f"cannot re-create {name}: {one_line(exc)}"
    reason = type(method).unavailable_reason()
    if reason:
        return f"{name} cannot run here ({reason})"
    return method


def _source_note(sources: dict[str, int], psnr_gaps: list[float], noise_mode: str) -> str:
    """Where the denoised crops came from (one paragraph): the run's crops file, its saved outputs, or
    re-created by running the methods again (with how close their PSNR is to the recorded one)."""
    run, saved, recreated = sources["run"], sources["saved"], sources["re-created"]
    if recreated == 0 and saved == 0 and run == 0:
        return "No denoised crop could be shown."
    if recreated == 0 and saved == 0:
        return (f"Denoised crops come from the run itself ({CROPS_FILE}): cut by bench run from the very outputs it "
                "scored, so no method was run again for this page.")
    if recreated == 0 and run == 0:
        return "Denoised crops come from the run's saved outputs (outputs/<method>/<image>.dng): the files that were scored."
    kept = [f"{run} from the run's {CROPS_FILE}"] * bool(run) + [f"{saved} from its saved outputs"] * bool(saved)
    if recreated == 0:
        return f"Denoised crops come from the results the run scored: {' and '.join(kept)}."
    check = ""
    if psnr_gaps and max(psnr_gaps) < 1e-6:
        check = " Every re-created result's PSNR equals the one the run recorded (to 1e-6 dB)."
    elif psnr_gaps:
        check = (f" Their PSNR differs from the one the run recorded by up to {max(psnr_gaps):.4f} dB, so they are "
                 "close to, not the same as, the scored results (another machine, package version or a "
                 "non-deterministic method).")
    if run == 0 and saved == 0:
        where = "The run did not save its outputs, so the denoised crops were re-created"
    elif run == 0:
        where = f"{saved} denoised crops come from the run's saved outputs; {recreated} were re-created"
    else:
        where = f"Of the denoised crops, {' and '.join(kept)}; {recreated} were re-created"
    return (f"{where} by running each method again on these images with the parameters and noise mode "
            f"({noise_mode}) recorded in run.json.{check}")
