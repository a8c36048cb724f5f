"""Bad input on the command line: exit status 2 and one ``error:`` line naming the path and the problem, found
before any work; unexpected failures: one line plus where the traceback went (``--debug`` prints it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench.cli import main
from tests.helpers import write_pair_folder

REPO = Path(__file__).resolve().parent.parent
EXIT_INTERNAL_ERROR = 70
#: small, quick training settings (the pair folder's images are 64 x 96)
QUICK_TRAIN = ["--steps", "1", "--patch", "16", "--batch", "2", "--config", '{"depth": 3, "features": 8}']


def only_error_line(capsys, argv: list[str], *fragments: str, status: int = 2) -> str:
    """Run ``bench.cli.main(argv)``; assert it printed exactly one line on stderr, ``error: ...`` holding every
    fragment (so nothing ran before the check), and exited with ``status``. Returns that line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == status, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


def output_commands(pair_folder: Path, out: Path) -> dict[str, list[str]]:
    """Each subcommand that writes somewhere, with its output option set to ``out``."""
    data = ["--data", str(pair_folder)]
    return {
        "run": ["run", "--methods", "noisy", *data, "--workers", "1", "--out", str(out)],
        "export": ["export", "--method", "bilateral", *data, "--out", str(out)],
        "noise": ["noise", *data, "--csv", str(out)],
        "tune": ["tune", "--method", "bilateral", *data, "--limit", "1", "--grid", "2", "--out", str(out)],
        "train": ["train", "dncnn", *data, *QUICK_TRAIN, "--out", str(out)],
    }


# ------------------------------------------------------------------------- 1. output paths checked up front


@pytest.mark.parametrize("command", ["run", "export", "noise", "tune", "train"])
def test_output_under_a_regular_file(capsys, pair_folder, a_file, command):
    out = a_file / "sub"
    only_error_line(capsys, output_commands(pair_folder, out)[command], str(a_file), "is a file, not a folder")
    assert a_file.read_text() == "not a folder"


@pytest.mark.parametrize("command", ["run", "train"])
def test_output_folder_that_is_a_file(capsys, pair_folder, a_file, command):
    only_error_line(capsys, output_commands(pair_folder, a_file)[command], str(a_file), "is a file, not a folder")


@pytest.mark.parametrize("command", ["noise", "tune"])
def test_output_file_that_is_a_folder(capsys, pair_folder, tmp_path, command):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    only_error_line(capsys, output_commands(pair_folder, folder)[command], str(folder), "is a folder, not a file")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders anyway")
@pytest.mark.parametrize("command", ["run", "export", "noise", "tune", "train"])
def test_output_in_a_read_only_folder(capsys, pair_folder, tmp_path, command):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        only_error_line(capsys, output_commands(pair_folder, locked / "out")[command], str(locked), "not writable")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("command", ["run", "export", "noise", "tune", "train"])
def test_output_in_a_folder_the_system_reports_read_only(capsys, pair_folder, tmp_path, monkeypatch, command):
    """The same where the tests run as root: the folder is read-only as far as ``os.access`` tells."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    only_error_line(capsys, output_commands(pair_folder, locked / "out")[command], str(locked), "not writable")


# ------------------------------------------------------------------------------------------- 2. --scheduler


@pytest.mark.parametrize("address", ["not a url::", "tcp://", "tcp://host", "tcp://host:99999", "smtp://host:25"])
def test_malformed_scheduler_address(capsys, pair_folder, tmp_path, address):
    only_error_line(capsys, ["run", "--methods", "noisy", "--data", str(pair_folder), "--out", str(tmp_path / "out"),
                             "--executor", "dask", "--scheduler", address], "--scheduler", repr(address))
    assert not (tmp_path / "out").exists()


def test_dask_without_scheduler_stops_before_the_run_folder(capsys, pair_folder, tmp_path):
    only_error_line(capsys, ["run", "--methods", "noisy", "--data", str(pair_folder), "--out", str(tmp_path / "out"),
                             "--executor", "dask"], "--executor dask needs --scheduler")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------- 3. train --config


@pytest.mark.parametrize("config, fragments", [
    ("{width: 32", ("--config", "not valid JSON")),
    ("[1, 2]", ("--config", "must be a JSON object")),
    ('{"widht": 32}', ("--config", "'widht'", "nafnet", "width")),
    ('{"width": "wide"}', ("--config", "'width'", "integer")),
    ('{"width": true}', ("--config", "'width'", "integer")),
    ('{"noise_map": "yes"}', ("--config", "'noise_map'", "true or false")),
    ('{"encoder_blocks": 3}', ("--config", "'encoder_blocks'", "list of integers")),
])
def test_bad_train_config(capsys, pair_folder, tmp_path, config, fragments):
    only_error_line(capsys, ["train", "nafnet", "--data", str(pair_folder), "--steps", "1", "--patch", "16",
                             "--config", config, "--out", str(tmp_path / "out")], *fragments)


# ------------------------------------------------------------------------- 4. names the file system refuses


@pytest.mark.parametrize("command", ["run", "export", "noise", "tune", "train"])
def test_output_name_too_long(capsys, pair_folder, tmp_path, command):
    out = tmp_path / ("x" * 300) / "out"
    only_error_line(capsys, output_commands(pair_folder, out)[command], "x" * 300, "name too long")


def test_data_folder_name_too_long(capsys, tmp_path):
    data = tmp_path / ("d" * 300)
    only_error_line(capsys, ["run", "--methods", "noisy", "--data", str(data)], "d" * 300, "name too long")


@pytest.fixture
def non_utf8_folder(tmp_path) -> Path:
    """A pair folder whose name is not valid UTF-8 (held as a str with surrogate escapes)."""
    return write_pair_folder(tmp_path / os.fsdecode(b"pairs\xff"))


def test_data_folder_name_not_utf8(capsys, non_utf8_folder, tmp_path):
    only_error_line(capsys, ["run", "--methods", "noisy", "--data", str(non_utf8_folder), "--workers", "1",
                             "--out", str(tmp_path / "out")], "pairs\\xff", "not valid UTF-8")
    assert not (tmp_path / "out").exists()


def test_output_folder_name_not_utf8(capsys, pair_folder, tmp_path):
    out = tmp_path / os.fsdecode(b"out\xff")
    only_error_line(capsys, ["noise", "--data", str(pair_folder), "--csv", str(out / "profiles.csv")],
                    "out\\xff", "not valid UTF-8")


# ----------------------------------------------------------------------------------------- 5. closed pipe


def test_closed_stdout_pipe_exits_quietly():
    """``python -m bench list | head -1``: the reader has gone; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the child writes anything, so every write fails
    try:
        result = subprocess.run([sys.executable, "-m", "bench", "list"], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 128 + signal.SIGPIPE


def test_shell_pipeline_into_head():
    """The same through a shell (whether the pipe is already closed at the first write is up to timing)."""
    result = subprocess.run(f"'{sys.executable}' -m bench list | head -1", shell=True, capture_output=True,
                            text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr == ""


# ------------------------------------------------------------------------------------------ 6. safety net


@pytest.fixture
def list_raises(monkeypatch, tmp_path):
    """``bench list`` fails with an unexpected two-line RuntimeError; temporary files go to ``tmp_path``."""
    import methods.registry

    def broken(pattern):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(methods.registry, "list_methods", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_unexpected_error_is_one_line_and_a_log_file(capsys, list_raises, tmp_path):
    line = only_error_line(capsys, ["list"], "RuntimeError: something broke", "--debug",
                           status=EXIT_INTERNAL_ERROR)
    assert "second line" not in line
    logs = list(tmp_path.glob("raw-bench-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback" in text and "RuntimeError: something broke" in text and "second line" in text


def test_debug_prints_the_traceback(capsys, list_raises, tmp_path):
    assert main(["--debug", "list"]) == EXIT_INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: something broke" in err
    assert not list(tmp_path.glob("raw-bench-error-*.log"))


def test_os_error_naming_a_file_is_bad_input(capsys, monkeypatch):
    import methods.registry

    def denied(pattern):
        raise PermissionError(13, "Permission denied", "/somewhere/locked.json")

    monkeypatch.setattr(methods.registry, "list_methods", denied)
    only_error_line(capsys, ["list"], "/somewhere/locked.json", "Permission denied")


# ----------------------------------------------------------------------------- 7. train keeps checkpoints


@pytest.mark.parametrize("checkpoint", ["best.pth", "last.pt"])
def test_train_refuses_a_folder_with_checkpoints(capsys, pair_folder, tmp_path, checkpoint):
    out = tmp_path / "checkpoints"
    out.mkdir()
    (out / checkpoint).write_bytes(b"earlier weights")
    only_error_line(capsys, ["train", "dncnn", "--data", str(pair_folder), *QUICK_TRAIN, "--out", str(out)],
                    str(out), checkpoint, "--overwrite", "--resume")
    assert (out / checkpoint).read_bytes() == b"earlier weights"


def test_train_overwrite_replaces_checkpoints(capsys, pair_folder, tmp_path):
    out = tmp_path / "checkpoints"
    out.mkdir()
    (out / "best.pth").write_bytes(b"earlier weights")
    assert main(["train", "dncnn", "--data", str(pair_folder), *QUICK_TRAIN, "--out", str(out), "--overwrite"]) == 0
    assert (out / "best.pth").read_bytes() != b"earlier weights" and (out / "last.pt").is_file()


def test_train_overwrite_and_resume_exclude_each_other(capsys, pair_folder, tmp_path):
    only_error_line(capsys, ["train", "dncnn", "--data", str(pair_folder), *QUICK_TRAIN, "--out", str(tmp_path),
                             "--resume", "--overwrite"], "--overwrite", "--resume")


def test_train_itself_refuses_a_folder_with_checkpoints(tmp_path):
    """Library callers of bench.train.train are protected too, not only the command line."""
    from bench.core.errors import BenchError
    from bench.train import TrainConfig, train

    (tmp_path / "last.pt").write_bytes(b"an earlier run")
    with pytest.raises(BenchError, match="already holds last.pt; add --resume .* or --overwrite"):
        train(TrainConfig("dncnn", tmp_path, steps=1, clean_dirs=[tmp_path]))
    assert (tmp_path / "last.pt").read_bytes() == b"an earlier run"
