"""bench export / bench verify: round trips for a classical and a learned method on tiny inputs, planted
violations each caught, the choice of the best method, and the repository's alg.py being current."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import codegen
from bench.run_record import DatasetRecord, MethodRecord, RunRecord
from bench.cli import main
from bench.core.errors import BenchError
from bench.core.files import file_sha256
from bench.core.noise_model import add_noise
from bench.core.rawio import (COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, level_range_problem, read_dng,
                              write_dng_splice, write_dng_standalone)
from bench.export import (MANIFEST_FORMAT, MAX_MODEL_BYTES, Choice, ExportRecord, best_in_run, export_submission,
                          script_source, verify_submission, write_zip)
from methods.registry import create_method
from tests.helpers import smooth_clean_mosaic

REPO = Path(__file__).resolve().parent.parent
#: The committed run the repository's alg.py is exported from (see the README's Submission section).
ROOT_ALG_RUN = "results/embedded/20261201-234208"


def write_test_folder(root: Path, count: int = 2, height: int = 64, width: int = 96) -> Path:
    """``count`` noisy images in the competition's test layout (``noisy{i}.dng``)."""
    root.mkdir(parents=True)
    for index in range(count):
        noisy = add_noise(smooth_clean_mosaic(height, width, seed=index), 2e-3, 1e-4,
                          np.random.default_rng(200 + index), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
        write_dng_standalone(noisy, root / f"noisy{index}.dng")
    return root


@pytest.fixture(scope="module")
def test_folder(tmp_path_factory) -> Path:
    return write_test_folder(tmp_path_factory.mktemp("export-inputs") / "test")


@pytest.fixture(scope="module")
def classical_export(tmp_path_factory, test_folder) -> Path:
    """A verified export of bilateral (fast) for the planted-violation tests to copy."""
    result = export_submission(Choice("bilateral", {}), test_folder, tmp_path_factory.mktemp("classical") / "result",
                               log=lambda message: None)
    assert result.problems == []
    return result.result_dir


@pytest.fixture(scope="module")
def learned_export(tmp_path_factory, test_folder) -> Path:
    """A verified export of dncnn for the planted-violation tests to copy."""
    result = export_submission(Choice("dncnn", {}), test_folder, tmp_path_factory.mktemp("learned") / "result",
                               log=lambda message: None)
    assert result.problems == []
    return result.result_dir


def copy_submission(result_dir: Path, tmp_path: Path) -> Path:
    """A copy of a submission folder and its result.zip, to damage."""
    copy = tmp_path / "result"
    shutil.copytree(result_dir, copy)
    shutil.copy(result_dir.parent / "result.zip", tmp_path / "result.zip")
    return copy


def rerecord_hashes(result: Path) -> None:
    """Make export.json's SHA-256 of the script, model.pth and outputs match the folder's files, and rezip: a
    forger covering their tracks, so that only the re-run can tell."""
    manifest_path = result / "algorithm" / "export.json"
    manifest = json.loads(manifest_path.read_text())
    models = result / "algorithm" / "models"
    manifest["script_sha256"] = file_sha256(models / manifest["script"])
    if (models / "model.pth").is_file():
        manifest["model_sha256"] = file_sha256(models / "model.pth")
    for record in manifest["inputs"]["files"]:
        record["output_sha256"] = file_sha256(result / "data" / record["output"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    write_zip(result, result.parent / "result.zip")


def test_classical_round_trip_with_worker_processes(tmp_path, test_folder):
    """BM3D cut into two tiles run by 2 worker processes, so the exported alg.py's process pool runs too;
    verification re-runs it alone and gets byte-identical files."""
    params = {"tile_size": 32, "workers": 2}
    result = export_submission(Choice("bm3d", params), test_folder, tmp_path / "result", log=lambda message: None)
    assert result.problems == []
    assert result.script == "alg.py"
    assert sorted(p.name for p in (tmp_path / "result" / "algorithm" / "models").iterdir()) == ["alg.py"]
    for index in range(2):
        noisy = read_dng(test_folder / f"noisy{index}.dng")
        out = read_dng(tmp_path / "result" / "data" / f"denoise{index}.dng")
        assert out.mosaic.shape == noisy.mosaic.shape
        assert COMPETITION_BLACK_LEVEL <= out.mosaic.min() and out.mosaic.max() <= COMPETITION_WHITE_LEVEL
        assert not np.array_equal(out.mosaic, noisy.mosaic)
    # what the harness's method gives for image 0, written back the competition's way
    from bench.core.noise import estimate_noise
    from bench.pipeline import packed_to_mosaic
    from methods.base import NoisyRaw

    noisy = read_dng(test_folder / "noisy0.dng")
    packed = noisy.normalized_packed()
    profile = estimate_noise(packed)
    denoised = create_method("bm3d", params).denoise(NoisyRaw(packed[None], noisy.cfa, lambda: profile, "0"))
    expected = packed_to_mosaic(denoised, packed.shape, noisy.levels)
    assert np.array_equal(read_dng(tmp_path / "result" / "data" / "denoise0.dng").mosaic, expected)
    with zipfile.ZipFile(tmp_path / "result.zip") as archive:
        names = archive.namelist()
    assert all(name.startswith("result/") for name in names)
    assert {"result/data/denoise0.dng", "result/data/denoise1.dng", "result/algorithm/models/alg.py",
            "result/algorithm/README.md"} <= set(names)
    report = (tmp_path / "result" / "algorithm" / "README.md").read_text()
    assert "tile_size" in report and "How to reproduce" in report and "Environment" in report


def test_learned_round_trip(tmp_path, test_folder):
    result = export_submission(Choice("dncnn", {}), test_folder, tmp_path / "result", log=lambda message: None)
    assert result.problems == []
    models = tmp_path / "result" / "algorithm" / "models"
    assert sorted(p.name for p in models.iterdir()) == ["model.pth", "network.py"]
    assert (models / "model.pth").stat().st_size <= MAX_MODEL_BYTES
    # network.py documents load_model; it works without bench and gives the shipped network's weights
    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); import network; m = network.load_model(); "
            "x = torch.rand(1, 8, 16, 16) * 0.5 + 0.01; print(tuple(m(x).shape), 'bench' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code, str(models)], capture_output=True, text=True,
                               cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["(1,", "4,", "16,", "16)", "False"]
    report = (tmp_path / "result" / "algorithm" / "README.md").read_text()
    assert "Model card" in report


def test_export_to_a_training_layout_folder(tmp_path, pair_folder):
    """--data may be a paired folder: its noisy/{i}_noise.dng become data/denoise{i}.dng."""
    result = export_submission(Choice("bilateral", {}), pair_folder, tmp_path / "result", log=lambda message: None)
    assert result.problems == []
    assert sorted(p.name for p in (tmp_path / "result" / "data").iterdir()) == [
        "denoise0.dng", "denoise1.dng", "denoise2.dng"]


def test_planted_oversized_weights_are_caught(tmp_path, learned_export):
    result = copy_submission(learned_export, tmp_path)
    with open(result / "algorithm" / "models" / "model.pth", "wb") as f:
        f.truncate(51_000_000)
    problems = verify_submission(result)
    assert any("model.pth" in p and "over the 50 MB limit" in p for p in problems), problems


def test_planted_missing_output_is_caught(tmp_path, classical_export):
    result = copy_submission(classical_export, tmp_path)
    (result / "data" / "denoise1.dng").unlink()
    write_zip(result, tmp_path / "result.zip")
    problems = verify_submission(result)
    assert problems == [f"{result / 'data' / 'denoise1.dng'}: missing (the output for noisy1.dng)"]


def test_planted_out_of_range_value_is_caught(tmp_path, classical_export, test_folder):
    result = copy_submission(classical_export, tmp_path)
    mosaic = read_dng(result / "data" / "denoise0.dng").mosaic.copy()
    mosaic[5, 7] = 1000  # below the black level
    write_dng_splice(test_folder / "noisy0.dng", mosaic, result / "data" / "denoise0.dng")
    write_zip(result, tmp_path / "result.zip")
    problems = verify_submission(result)
    levels = f"outside [{COMPETITION_BLACK_LEVEL}, {COMPETITION_WHITE_LEVEL}]"
    assert any("denoise0.dng: values 1000.." in p and levels in p for p in problems), problems


def test_planted_wrong_name_is_caught(tmp_path, classical_export):
    result = copy_submission(classical_export, tmp_path)
    (result / "data" / "denoise0.dng").rename(result / "data" / "denoised0.dng")
    problems = verify_submission(result)
    assert any(p.endswith("denoised0.dng: wrong name (outputs are named denoise{i}.dng)") for p in problems), problems
    assert any("denoise0.dng: missing" in p for p in problems), problems


def test_planted_model_file_in_a_classical_submission_is_caught(tmp_path, classical_export):
    result = copy_submission(classical_export, tmp_path)
    (result / "algorithm" / "models" / "model.pth").write_bytes(b"x")
    problems = verify_submission(result)
    assert any("model.pth: unexpected file" in p for p in problems), problems


def test_tampered_output_fails_the_rerun(tmp_path, classical_export, test_folder):
    """A file that is valid but not what the exported code writes (one value off by one)."""
    result = copy_submission(classical_export, tmp_path)
    mosaic = read_dng(result / "data" / "denoise1.dng").mosaic.copy()
    mosaic[3, 3] += 1
    write_dng_splice(test_folder / "noisy1.dng", mosaic, result / "data" / "denoise1.dng")
    rerecord_hashes(result)
    problems = verify_submission(result)
    assert len(problems) == 1 and "denoise1.dng: differs from what alg.py writes" in problems[0], problems
    assert "1 pixels differ, by up to 1" in problems[0]


def test_exported_code_may_not_import_bench(tmp_path, classical_export):
    result = copy_submission(classical_export, tmp_path)
    script = result / "algorithm" / "models" / "alg.py"
    script.write_text(script.read_text().replace("from __future__ import annotations\n",
                                                 "from __future__ import annotations\nimport bench.core.rawio\n", 1))
    rerecord_hashes(result)
    problems = verify_submission(result)
    assert len(problems) == 1 and "exported code imported bench" in problems[0], problems


def test_planted_stray_files_are_caught(tmp_path, classical_export):
    """Every file outside data/denoise{i}.dng, algorithm/README.md, algorithm/export.json and algorithm/models/
    is one problem naming it."""
    result = copy_submission(classical_export, tmp_path)
    (result / "notes.txt").write_text("x")
    (result / "algorithm" / "extra").mkdir()
    (result / "algorithm" / "extra" / "helper.py").write_text("x")
    write_zip(result, tmp_path / "result.zip")
    problems = verify_submission(result)
    layout = ("a submission holds only data/denoise{i}.dng, algorithm/README.md, algorithm/export.json and "
              "algorithm/models/")
    assert problems == [f"{result / 'algorithm' / 'extra' / 'helper.py'}: unexpected file ({layout})",
                        f"{result / 'notes.txt'}: unexpected file ({layout})"]


@pytest.mark.parametrize("falsify, expected", [
    (lambda m: m.update(method="bm3d"), "{export}: method is 'bm3d', but alg.py declares 'bilateral'"),
    (lambda m: m.update(kind="learned"), "{export}: kind is 'learned', but alg.py declares 'classical'"),
    (lambda m: m.update(script="network.py"), "{export}: script is 'network.py', but the submission's is 'alg.py'"),
    (lambda m: m["params"].update(sigma_color=3.0),
     "{export}: params['sigma_color'] is 3.0, but alg.py runs with 2.25"),
    (lambda m: m["params"].pop("diameter"), "{export}: params['diameter'] is absent, but alg.py runs with 9"),
    (lambda m: m["inputs"]["files"][1].update(output_sha256="0" * 64),
     "{data}/denoise1.dng: SHA-256 differs from export.json's output_sha256"),
    (lambda m: m["inputs"]["files"].pop(0), "{data}/denoise0.dng: export.json records no output_sha256 for it"),
], ids=["method", "kind", "script", "param-value", "param-missing", "output-hash", "output-unrecorded"])
def test_falsified_export_record_is_caught(tmp_path, classical_export, falsify, expected):
    """export.json must say what the script declares (method, kind, parameters) and hold the outputs'
    SHA-256."""
    result = copy_submission(classical_export, tmp_path)
    manifest_path = result / "algorithm" / "export.json"
    manifest = json.loads(manifest_path.read_text())
    falsify(manifest)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    write_zip(result, tmp_path / "result.zip")
    problems = verify_submission(result)
    assert problems == [expected.format(export=manifest_path, data=result / "data")]


def edit_record(result: Path, change) -> Path:
    """Apply ``change`` to the parsed export.json of ``result`` (a copy), write it back and rezip; returns its
    path."""
    path = result / "algorithm" / "export.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    write_zip(result, result.parent / "result.zip")
    return path


def test_export_record_reads_back_what_was_written(tmp_path, classical_export, test_folder):
    """export.json is an ExportRecord of the current format; read back it is the export's, and written
    again it is the same file."""
    path = classical_export / "algorithm" / "export.json"
    assert json.loads(path.read_text())["format"] == MANIFEST_FORMAT
    record = ExportRecord.read(classical_export)
    assert (record.method, record.kind, record.script, record.model_sha256) == ("bilateral", "classical", "alg.py",
                                                                                 None)
    assert (record.levels, record.black_level, record.white_level) == ("competition", COMPETITION_BLACK_LEVEL,
                                                                       COMPETITION_WHITE_LEVEL)
    assert record.script_sha256 == file_sha256(classical_export / "algorithm" / "models" / "alg.py")
    assert Path(record.inputs.folder) == test_folder.resolve()
    assert [(f.id, f.input, f.output) for f in record.inputs.files] == [("0", "noisy0.dng", "denoise0.dng"),
                                                                         ("1", "noisy1.dng", "denoise1.dng")]
    assert len(record.seconds_per_image) == 2
    (tmp_path / "algorithm").mkdir()
    record.write(tmp_path)
    assert (tmp_path / "algorithm" / "export.json").read_bytes() == path.read_bytes()
    assert ExportRecord.read(tmp_path) == record
    with pytest.raises(BenchError, match="export.json: cannot read the export record"):
        ExportRecord.read(tmp_path / "nowhere")


def test_an_old_format_record_is_one_problem_saying_to_export_again(tmp_path, classical_export):
    """A record of raw-bench-export-1 (before script_sha256 and model_sha256) is not read field by field:
    one line says to export again."""
    result = copy_submission(classical_export, tmp_path)

    def make_old(manifest: dict) -> None:
        manifest["format"] = "raw-bench-export-1"
        del manifest["script_sha256"], manifest["model_sha256"]

    path = edit_record(result, make_old)
    problems = verify_submission(result)
    assert problems == [f"{path}: format is 'raw-bench-export-1', not {MANIFEST_FORMAT!r}: written by another "
                        "version of bench export, whose record this one does not read; export again"]


def _set_file(index: int, **fields):
    return lambda m: m["inputs"]["files"][index].update(fields)


@pytest.mark.parametrize("damage, expected", [
    (lambda m: m.pop("method"), "export.json has no 'method'"),
    (lambda m: m.update(params=[1]), "export.json.params is [1], not dict"),
    (lambda m: m.update(format=None), "format is None, not {format!r}: written by another version of bench "
                                      "export, whose record this one does not read; export again"),
    (lambda m: m.update(black_level="1024"), "export.json.black_level is '1024', not int"),
    (lambda m: m.update(white_level=True), "export.json.white_level is True, not int"),
    (lambda m: m.update(black_level=20000), "black_level/white_level: {range_problem}"),
    (lambda m: m.update(script_sha256="abc"), "export.json.script_sha256 is 'abc', not a hex SHA-256"),
    (lambda m: m["inputs"].pop("folder"), "inputs has no 'folder'"),
    (lambda m: m["inputs"].update(files={}), "inputs.files is {{}}, not list"),
    (lambda m: m["inputs"]["files"][0].pop("input"), "inputs.files[0] has no 'input'"),
    (_set_file(1, output_sha256="0" * 63), "inputs.files[1].output_sha256 is '{short}', not a hex SHA-256"),
    (_set_file(1, output="denoise0.dng"), "inputs.files[1].output 'denoise0.dng' is also inputs.files[0].output"),
    (lambda m: m.update(seconds_per_image=[1.0, "fast"]), "seconds_per_image[1] is 'fast', not a number"),
], ids=["field-missing", "field-type", "no-format", "level-type", "level-bool", "level-range", "sha-form",
        "inputs-folder", "inputs-files", "file-field", "file-sha", "file-duplicate", "seconds"])
def test_damaged_export_record_is_one_problem_naming_the_field(tmp_path, classical_export, damage, expected):
    """A damaged export.json is one problem line naming the file and the field, not a default put in its
    place (and the checks that need the record are left out)."""
    path = edit_record(copy_submission(classical_export, tmp_path), damage)
    problems = verify_submission(path.parent.parent)
    range_problem = level_range_problem(20000, COMPETITION_WHITE_LEVEL)
    assert problems == [f"{path}: " + expected.format(format=MANIFEST_FORMAT, range_problem=range_problem,
                                                        short="0" * 63)]


def test_unreadable_export_record_is_one_problem(tmp_path, classical_export):
    result = copy_submission(classical_export, tmp_path)
    path = result / "algorithm" / "export.json"
    for text, message in (("{", "cannot read the export record (Expecting"),
                          ("[]", "export.json is not a JSON object")):
        path.write_text(text)
        write_zip(result, tmp_path / "result.zip")
        problems = verify_submission(result)
        assert len(problems) == 1 and problems[0].startswith(f"{path}: {message}"), problems


def test_learned_record_without_model_hash_is_caught(tmp_path, learned_export):
    path = edit_record(copy_submission(learned_export, tmp_path), lambda m: m.update(model_sha256=None))
    assert verify_submission(path.parent.parent) == [f"{path}: no model_sha256 recorded"]


def test_script_changed_after_the_export_is_caught(tmp_path, classical_export):
    """An edit that leaves the outputs alone (so the re-run cannot tell) still differs from the script's
    SHA-256 recorded at export."""
    result = copy_submission(classical_export, tmp_path)
    script = result / "algorithm" / "models" / "alg.py"
    script.write_text(script.read_text() + "# edited after the export\n")
    write_zip(result, tmp_path / "result.zip")
    problems = verify_submission(result)
    assert problems == [f"{script}: SHA-256 differs from export.json's script_sha256"]


def test_model_changed_after_the_export_is_caught(tmp_path, learned_export):
    """The same weights re-saved with another model card give the same outputs, but not model.pth's SHA-256
    recorded at export."""
    import torch

    result = copy_submission(learned_export, tmp_path)
    weights = result / "algorithm" / "models" / "model.pth"
    checkpoint = torch.load(weights, weights_only=True)
    checkpoint["card"] = {"note": "re-saved after the export"}
    torch.save(checkpoint, weights)
    write_zip(result, tmp_path / "result.zip")
    problems = verify_submission(result)
    assert problems == [f"{weights}: SHA-256 differs from export.json's model_sha256"]


def test_script_copying_the_shipped_outputs_is_caught(tmp_path, classical_export):
    """An alg.py that copies ../../data/denoise{i}.dng (beside itself in the submission) instead of denoising:
    the re-run works in a fresh folder with copies of the models and inputs only, so it finds nothing."""
    result = copy_submission(classical_export, tmp_path)
    script = result / "algorithm" / "models" / "alg.py"
    cheat = (
        "    import shutil\n"
        "    shipped = Path(__file__).parent / '..' / '..' / 'data'\n"
        "    Path(argv[1]).mkdir(parents=True, exist_ok=True)\n"
        "    for noisy in sorted(Path(argv[0]).glob('noisy*.dng')):\n"
        "        name = 'denoise' + noisy.stem[len('noisy'):] + '.dng'\n"
        "        shutil.copy(shipped / name, Path(argv[1]) / name)\n"
        "    return 0\n")
    honest = "    return script_main(argv, denoise_image, LEVELS, DESCRIPTION)\n"
    assert honest in script.read_text()
    script.write_text(script.read_text().replace(honest, cheat))
    rerecord_hashes(result)
    problems = verify_submission(result)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{script}: exited with status 1 when run alone")
    assert "FileNotFoundError" in problems[0] and "denoise0.dng" in problems[0]


def test_zip_must_match_the_folder(tmp_path, classical_export):
    result = copy_submission(classical_export, tmp_path)
    with zipfile.ZipFile(tmp_path / "result.zip", "a") as archive:
        archive.writestr("stray.txt", "x")
    (result / "algorithm" / "README.md").write_text("changed")
    problems = verify_submission(result)
    assert any("stray.txt is outside the top folder result/" in p for p in problems), problems
    assert any("result/algorithm/README.md differs" in p for p in problems), problems


def test_changed_input_is_caught(tmp_path, classical_export, test_folder):
    result = copy_submission(classical_export, tmp_path)
    inputs = write_test_folder(tmp_path / "other-inputs")
    (inputs / "noisy0.dng").write_bytes((test_folder / "noisy1.dng").read_bytes())
    problems = verify_submission(result, data=inputs)
    assert any("noisy0.dng: changed since the export" in p for p in problems), problems


def test_verify_cli_exit_status(tmp_path, classical_export, capsys):
    assert main(["verify", str(classical_export)]) == 0
    assert "verified:" in capsys.readouterr().out
    result = copy_submission(classical_export, tmp_path)
    (result / "data" / "denoise0.dng").unlink()
    assert main(["verify", str(result)]) == 1
    out = capsys.readouterr().out
    assert "FAILED:" in out and "denoise0.dng: missing" in out


def test_export_refuses_to_overwrite(tmp_path, test_folder, classical_export):
    with pytest.raises(BenchError, match="already exists and is not empty"):
        export_submission(Choice("bilateral", {}), test_folder, classical_export, log=lambda message: None)


def test_export_cli_bad_input_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "--method", "bilateral", "--data", str(empty), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {empty}: no noisy images (expected noisy{{i}}.dng or {{i}}_noise.dng files)"]


def test_burst_and_reference_methods_are_not_exportable(tmp_path, test_folder):
    with pytest.raises(BenchError, match="needs bursts"):
        export_submission(Choice("burst_mean", {}), test_folder, tmp_path / "a", log=lambda message: None)
    with pytest.raises(BenchError, match="cannot be exported"):
        export_submission(Choice("noisy", {}), test_folder, tmp_path / "b", log=lambda message: None)


def test_exported_script_reports_bad_input_in_one_line(tmp_path):
    script = tmp_path / "alg.py"
    script.write_text(script_source(create_method("bilateral"), Choice("bilateral", {})))
    completed = subprocess.run([sys.executable, str(script), str(tmp_path / "nowhere"), str(tmp_path / "out")],
                               capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: {tmp_path / 'nowhere'}: input folder not found"


def write_run(folder: Path, rows: list[tuple[str, str, float, int]]) -> Path:
    """A minimal scored run folder: (method, kind, score, failures) rows."""
    folder.mkdir(parents=True)
    pd.DataFrame([{"method": m, "score": s, "psnr": 40.0, "ssim": 0.9, "ssim_col": 0.9, "seconds_per_image": 1.0,
                   "mp_per_second": 1.0, "images": 3 - f, "failures": f} for m, _, s, f in rows]
                 ).to_csv(folder / "summary.csv", index=False)
    methods = {m: MethodRecord(k, {"h": 2.0} if m == "nlm" else {}) for m, k, _, _ in rows}
    dataset = DatasetRecord("pairs", str(folder), 3, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    RunRecord("bench run", "2026-12-01T00:00:00", "finished", dataset, "estimate", None, methods, {},
              None).write(folder)
    return folder


def test_best_in_run_picks_the_highest_exportable_score(tmp_path):
    run = write_run(tmp_path / "run", [("burst_merge", "burst", 70.0, 0), ("nafnet", "learned", 66.0, 1),
                                       ("dncnn", "learned", 64.0, 0), ("nlm", "classical", 62.0, 0),
                                       ("bm3d", "classical", 63.0, 2), ("noisy", "reference", 40.0, 0)])
    best = best_in_run(run)
    assert (best.name, best.score) == ("dncnn", 64.0)  # burst and failing methods are passed over
    classical = best_in_run(run, "classical")
    assert (classical.name, classical.params) == ("nlm", {"h": 2.0})
    only_reference = write_run(tmp_path / "run2", [("noisy", "reference", 40.0, 0)])
    with pytest.raises(BenchError, match="no classical or learned method scored every image"):
        best_in_run(only_reference)
    with pytest.raises(BenchError, match="not a `bench run` folder"):
        best_in_run(tmp_path / "missing")


def test_codegen_refuses_imports_of_our_packages_inside_copied_code():
    from bench.train import _scored as validation_score  # imports bench.evaluation inside its body

    with pytest.raises(codegen.CodegenError, match="imports bench.evaluation inside"):
        codegen.assemble([validation_score])


def test_repository_alg_py_is_the_current_export(monkeypatch):
    """The root alg.py is `bench export --best <committed run> --kind classical --script alg.py`; any change to
    the code it copies (or to the choice) must be followed by regenerating it."""
    monkeypatch.chdir(REPO)
    choice = best_in_run(Path(ROOT_ALG_RUN), "classical")
    expected = script_source(create_method(choice.name, choice.params), choice)
    committed = (REPO / "alg.py").read_text()
    assert committed == expected, (f"alg.py is out of date: run `python -m bench export --best {ROOT_ALG_RUN} "
                                   "--kind classical --script alg.py`")


def test_a_method_failing_mid_export_is_one_line(monkeypatch, tmp_path, test_folder):
    import methods.bilateral

    def broken(packed, profile, sigma_color, sigma_space, diameter):
        raise RuntimeError("out of memory\nmore detail")

    monkeypatch.setattr(methods.bilateral, "bilateral_packed", broken)
    with pytest.raises(BenchError, match=r"noisy0.dng: bilateral failed on it \(RuntimeError: out of memory\); .* "
                                         r"is incomplete and has no result.zip"):
        export_submission(Choice("bilateral", {}), test_folder, tmp_path / "result", log=lambda message: None)
    assert not (tmp_path / "result.zip").exists()
