"""Checks of the command line's input before any work: params files, path names, output paths that must be
writable, the Dask scheduler address, network settings. Each raises BenchError with one line naming the
thing at fault."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from bench.core.errors import BenchError


def load_params_file(path: Path) -> dict[str, dict]:
    """Read ``{"method": {"param": value, ...}, ...}``; BenchError naming the file on any problem.
    Parameter names and types are checked when the methods are created."""
    from methods.registry import get_method_class

    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BenchError(f"{path}: cannot read params file ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: params file is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BenchError(f'{path}: params file must be a JSON object {{"method": {{"param": value}}}}')
    for name in data:
        try:
            get_method_class(name)
        except BenchError as exc:
            raise BenchError(f"{path}: {exc}") from None
    return data


# ------------------------------------------------ checks of paths, addresses and settings, made before any work


def printable_path(path: str | bytes | os.PathLike) -> str:
    """``path`` as text that prints anywhere: bytes that are not UTF-8 shown as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def check_path_names(args: argparse.Namespace) -> None:
    """``check_path_name`` for every path on the command line."""
    for value in vars(args).values():
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, Path):
                check_path_name(path)


def check_path_name(path: Path) -> None:
    """BenchError unless ``path`` is valid UTF-8 (it goes into the text files the commands write) and no part
    of it, nor the whole, is longer than the file system allows."""
    try:
        os.fsencode(path).decode("utf-8")  # undecodable bytes reach Python as surrogates that encode back
    except UnicodeError:
        raise BenchError(f"{printable_path(path)}: name is not valid UTF-8; rename it") from None
    name_max, path_max = _name_limits(path)
    longest = max(len(os.fsencode(part)) for part in path.parts) if path.parts else 0
    if longest > name_max:
        raise BenchError(f"{path}: name too long (a part of {longest} bytes; the file system allows {name_max})")
    length = len(os.fsencode(os.path.abspath(path)))
    if length >= path_max:
        raise BenchError(f"{path}: path too long ({length} bytes; the file system allows {path_max - 1})")


def ensure_writable_folder(path: Path, what: str) -> None:
    """BenchError naming ``path`` (the value of option ``what``) unless it is a folder this process can write
    in, or one it can create. Nothing is created."""
    check_path_name(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise BenchError(f"{path}: {what} is a file, not a folder")
    _ensure_can_write_in(path, path, what)


def ensure_writable_file(path: Path, what: str) -> None:
    """BenchError naming ``path`` (the value of option ``what``) unless this process can write that file,
    creating the folders above it. Nothing is created."""
    check_path_name(path)
    if os.path.isdir(path):
        raise BenchError(f"{path}: {what} is a folder, not a file")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise BenchError(f"{path}: {what} is not writable")
    _ensure_can_write_in(path.parent, path, what)


def _ensure_can_write_in(folder: Path, target: Path, what: str) -> None:
    """BenchError naming ``target`` unless ``folder`` is, or can be created as, a folder this process can write
    in."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise BenchError(f"{target}: {what} cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"{target}: {what} cannot be written: {existing} is not writable")


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest ancestor that does."""
    for candidate in (path, *path.parents):
        if os.path.exists(candidate):
            return candidate
    return Path(path.anchor or ".")


def _name_limits(path: Path) -> tuple[int, int]:
    """The longest file name and the longest path, in bytes, on the file system that holds or would hold
    ``path`` (255 and 4096 where the system cannot say)."""
    existing = _nearest_existing(path)
    try:
        return os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # AttributeError: no os.pathconf (Windows)
        return 255, 4096


#: The transports a Dask scheduler address can name (``distributed.comm.registry``; ``inproc`` is in-process only).
DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\]")


def check_executor_options(executor: str, scheduler: str | None) -> None:
    """BenchError unless ``--scheduler`` comes with ``--executor dask`` (and the other way round) and looks
    like a Dask address, ``[SCHEME://]HOST:PORT``. Nothing is contacted."""
    if executor != "dask":
        if scheduler:
            raise BenchError("--scheduler goes with --executor dask")
        return
    if not scheduler:
        raise BenchError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
    problem = _address_problem(scheduler)
    if problem:
        raise BenchError(f"--scheduler {scheduler!r}: {problem}; expected [SCHEME://]HOST:PORT such as "
                         "tcp://10.0.0.5:8786")


def _address_problem(address: str) -> str | None:
    """What is wrong with a Dask scheduler address, or None."""
    scheme, separator, location = address.partition("://")
    if not separator:
        scheme, location = "tcp", address
    host, colon, port = location.rpartition(":")
    if scheme not in DASK_SCHEMES:
        return f"unknown scheme {scheme!r} (Dask knows {', '.join(DASK_SCHEMES)})"
    if not colon:
        return "no :PORT after the host"
    if not _HOST.fullmatch(host):
        return f"{host!r} is not a host name or IP address (IPv6 goes in brackets: [::1])"
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        return f"port {port!r} is not a number from 1 to 65535"
    return None


def parse_network_config(text: str, network: str) -> dict:
    """``bench train --config``: JSON text -> the checked settings (``check_network_config``)."""
    from methods.toolkit.learned import check_network_config

    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchError(f"--config: not valid JSON ({exc})") from None
    return check_network_config(network, config, text)


# -------------------------------------------------------------------------------- failures nobody expected


