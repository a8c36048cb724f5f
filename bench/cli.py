"""Command line: ``python -m bench list | run | tune | train | speed | noise | export | verify | report``.

Errors in the user's input print one line (``error: <file>: <problem>``) and exit with status 2; output
paths are checked before any work. Anything unexpected prints one line and the file holding its traceback
and exits with status 70 (``python -m bench --debug ...`` prints the traceback instead). A closed stdout
(``| head -1``) ends the command quietly with status 141, as SIGPIPE would.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from bench.burst import DEFAULT_MAX_ROTATION, DEFAULT_MAX_SHIFT, DEFAULT_SEED
from bench.core.errors import BenchError, RunInterrupted, first_line
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL

EXIT_NOTHING_SUCCEEDED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader has gone
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    _terminate_like_ctrl_c()
    try:
        check_path_names(args)
        status = args.handler(args)
        sys.stdout.flush()  # a reader that has gone (`| head -1`) shows up here rather than at exit
        return status
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # stdout's reader has gone: stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a file the system refused (no space, no permission): the set-up, not a bug
        if not isinstance(exc.filename, (str, bytes, os.PathLike)):
            return _internal_error(exc, args.debug)
        print(f"error: {printable_path(exc.filename)}: {exc.strerror or first_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # the safety net (an interruption is no Exception: it goes on to the next branch)
        return _internal_error(exc, args.debug)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (see _terminate_like_ctrl_c)
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (``kill``, a batch scheduler's time limit) stops every command the way Ctrl-C does: cleanup
    runs, a run writes its tables, and the exit status is 143 (128 + 15) instead of 130."""
    def handler(signum: int, frame) -> None:
        raise RunInterrupted(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="RAW (DNG) denoising benchmark, "
                                     "scored like the ZTE 2022 challenge.")
    parser.add_argument("--debug", action="store_true",
                        help="on an unexpected error, print its full traceback (instead of saving it to a file)")
    commands = parser.add_subparsers(title="commands")

    listing = commands.add_parser("list", help="show registered methods, their parameters and availability")
    listing.add_argument("pattern", nargs="?", default="*", help="wildcard filter on method names")
    listing.set_defaults(handler=_cmd_list)

    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data", type=Path, help="dataset folder (competition layout); default: the embedded set")
    data.add_argument("--limit", type=int, help="use only the first N images")
    data.add_argument("--black-level", type=int, default=1024, help="black level (competition: 1024)")
    data.add_argument("--white-level", type=int, default=16383, help="white level (competition: 16383)")
    noise = argparse.ArgumentParser(add_help=False)
    noise.add_argument("--noise", choices=("estimate", "oracle"), default="estimate",
                       help="noise profile given to methods: estimated from each image (blind, default) or the "
                            "dataset's true one (noise_profile.csv)")

    burst = argparse.ArgumentParser(add_help=False)
    burst.add_argument("--burst", type=int, metavar="N",
                       help="give burst methods N frames per image (real ones from DIR/burst/ if the dataset has "
                            "them, else synthetic frames with camera motion); single-frame methods get frame 0")
    burst.add_argument("--burst-motion", type=float, default=DEFAULT_MAX_SHIFT, metavar="PIXELS",
                       help=f"synthetic bursts: largest shift in x and y, sensor pixels (default {DEFAULT_MAX_SHIFT})")
    burst.add_argument("--burst-rotation", type=float, default=DEFAULT_MAX_ROTATION, metavar="DEGREES",
                       help=f"synthetic bursts: largest rotation (default {DEFAULT_MAX_ROTATION}); "
                            "--burst-motion 0 --burst-rotation 0 makes static bursts")
    burst.add_argument("--burst-seed", type=int, default=DEFAULT_SEED, help="synthetic bursts: random seed")

    run = commands.add_parser("run", parents=[data, noise, burst], help="denoise, score and tabulate methods on a dataset")
    run.add_argument("--methods", required=True, help="comma-separated names or wildcards, e.g. noisy,bm3d")
    run.add_argument("--out", type=Path, default=Path("results"), help="output root (default: results/)")
    run.add_argument("--save-outputs", action="store_true", help="write each result as outputs/<method>/<image>.dng")
    run.add_argument("--params", type=Path, help='JSON file {"method": {"param": value}} overriding defaults')
    run.add_argument("--workers", type=int, help="worker processes for the (method, image) tasks (default: one "
                                                 "per core; 1 = all in this process); threads are shared out")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"),
                     help="where learned methods run (default: their `device` parameter, auto = CUDA if present)")
    run.add_argument("--fresh", action="store_true", help="recompute every result instead of taking finished "
                                                          "ones from the cache (the cache is refreshed)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local processes (default) or an existing Dask cluster (--scheduler)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    run.add_argument("--report", action="store_true",
                     help="also write the HTML report (RUN_DIR/report.html) at the end, as `bench report` does")
    run.set_defaults(handler=_cmd_run)

    tune = commands.add_parser("tune", parents=[data, noise, burst],
                               help="search a method's declared parameter ranges on training pairs")
    tune.add_argument("--method", required=True, help="the method to tune")
    tune.add_argument("--grid", type=int, default=5, help="values tried per numeric parameter (default 5)")
    tune.add_argument("--rounds", type=int, default=1, help="passes over all parameters (default 1)")
    tune.add_argument("--out", type=Path,
                      help="params JSON to write (default: results/<dataset>/tuned/<method>.json); "
                           "the trials go beside it as <method>.trials.csv")
    tune.set_defaults(handler=_cmd_tune)

    training = commands.add_parser("train", help="train a packed-RAW network (nafnet or dncnn)")
    training.add_argument("network", help="the learned method whose network to train (e.g. nafnet, dncnn)")
    training.add_argument("--clean-dir", type=Path, action="append", default=[],
                          help="folder of clean sRGB images for synthetic pairs (repeatable)")
    training.add_argument("--data", type=Path, help="competition-layout folder of real training pairs")
    training.add_argument("--steps", type=int, default=2000, help="optimiser steps in all (default 2000)")
    training.add_argument("--batch", type=int, default=8, help="patches per step (default 8)")
    training.add_argument("--patch", type=int, default=64, help="patch side in packed pixels (default 64)")
    training.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    training.add_argument("--loss", choices=("l1", "psnr"), default="l1", help="main loss (default l1)")
    training.add_argument("--fourier-weight", type=float, default=0.0, help="weight of the FFT-magnitude L1 term")
    training.add_argument("--adjacent-weight", type=float, default=0.0,
                          help="weight of the adjacent-pixel (gradient) L1 term")
    training.add_argument("--config", default="{}", metavar="JSON",
                          help='network settings over the defaults, e.g. \'{"width": 32}\'')
    training.add_argument("--val-every", type=int, default=250, help="steps between validations (default 250)")
    training.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    training.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = its default)")
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--out", type=Path, help="output folder (default checkpoints/<network>)")
    training.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    training.add_argument("--overwrite", action="store_true",
                          help="replace the checkpoints already in <out> (without it, such a folder is refused)")
    training.set_defaults(handler=_cmd_train)

    speed = commands.add_parser("speed", help="time and peak memory of methods on one full-size frame")
    speed.add_argument("--methods", required=True, help="comma-separated names or wildcards")
    speed.add_argument("--size", default="3472x4624", help="frame size HxW in sensor pixels (default 3472x4624)")
    speed.add_argument("--params", type=Path, help='JSON file {"method": {"param": value}}')
    speed.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    speed.set_defaults(handler=_cmd_speed)

    export = commands.add_parser("export", help="write a competition submission for one method, then verify it")
    chosen = export.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--method", help="the method to export (parameters: --params, else its defaults)")
    chosen.add_argument("--best", type=Path, metavar="RUN_DIR",
                        help="export the method with the highest mean Score in this `bench run` folder, with the "
                             "parameters it ran with")
    export.add_argument("--kind", choices=("classical", "learned"), help="with --best: consider only this kind")
    export.add_argument("--params", type=Path, help='JSON file {"method": {"param": value}} (over --best\'s values)')
    export.add_argument("--data", type=Path, help="folder of noisy{i}.dng test images (or a training-layout "
                                                  "folder); default: the embedded set's noisy images")
    export.add_argument("--out", type=Path, default=Path("result"),
                        help="submission folder to create (default: result/); result.zip is written beside it")
    export.add_argument("--script", type=Path, metavar="PATH",
                        help="only write the self-contained script (alg.py or network.py) to PATH: no data, "
                             "no zip, no verification")
    export.add_argument("--black-level", type=int, default=1024, help="black level (competition: 1024)")
    export.add_argument("--white-level", type=int, default=16383, help="white level (competition: 16383)")
    export.set_defaults(handler=_cmd_export)

    verify = commands.add_parser("verify", help="check a submission folder written by `bench export`")
    verify.add_argument("result_dir", type=Path, metavar="RESULT_DIR")
    verify.add_argument("--data", type=Path, help="the test images (default: the folder recorded at export)")
    verify.set_defaults(handler=_cmd_verify)

    estimate = commands.add_parser("noise", parents=[data],
                                   help="estimate the noise profile (a, b) of every noisy image")
    estimate.add_argument("--csv", type=Path, help="write image,a,b to this CSV file")
    estimate.set_defaults(handler=_cmd_noise)

    report = commands.add_parser("report", help="write a self-contained HTML report of a `bench run` folder")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, metavar="FILE", help="HTML file to write (default: RUN_DIR/report.html)")
    report.set_defaults(handler=_cmd_report)
    return parser


def _open_dataset(args: argparse.Namespace):
    """The dataset named by --data (or the embedded one), cut to --limit."""
    from bench.datasets import open_dataset
    from bench.embedded import embedded_dataset

    if args.data is not None:
        dataset = open_dataset(args.data, black_level=args.black_level, white_level=args.white_level)
    else:
        if (args.black_level, args.white_level) != (COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL):
            raise BenchError(f"--black-level/--white-level: the embedded set is made with the competition's "
                             f"{COMPETITION_BLACK_LEVEL}/{COMPETITION_WHITE_LEVEL}; other levels go with --data")
        dataset = embedded_dataset(log=lambda message: print(message, file=sys.stderr))
    return dataset.limited(args.limit)


def _burst_spec(args: argparse.Namespace):
    """The BurstSpec of --burst and its options, or None without --burst."""
    from bench.burst import BurstSpec

    if args.burst is None:
        return None
    if args.burst < 1:
        raise BenchError(f"--burst must be at least 1, got {args.burst}")
    if args.burst_motion < 0 or args.burst_rotation < 0:
        raise BenchError("--burst-motion and --burst-rotation must be >= 0")
    return BurstSpec(args.burst, args.burst_motion, args.burst_rotation, args.burst_seed)


def _cmd_list(args: argparse.Namespace) -> int:
    from methods.registry import get_method_class, list_methods

    names = list_methods(args.pattern)
    if not names:
        print(f"no method matches {args.pattern!r}")
        return 0
    for name in names:
        cls = get_method_class(name)
        reason = cls.unavailable_reason()
        status = "ready" if reason is None else f"cannot run here: {reason}"
        print(f"{name}  [{cls.kind}]  {status}")
        print(f"    {cls.describe()}")
        if cls.kind == "burst":
            print("    uses every frame of a burst (bench run --burst N); without --burst it runs on a one-frame burst")
        for spec in cls.params():
            bounds = f"  {spec.bounds_text()}" if spec.bounds_text() else ""
            print(f"    --  {spec.name}: {spec.type.__name__} = {spec.default!r}{bounds}  {spec.doc}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from bench import provenance
    from bench.runner import RunConfig, run_benchmark
    from bench.tables import to_markdown
    from methods.registry import resolve_method_names

    from bench.executors import available_cores
    from methods.registry import get_method_class

    ensure_writable_folder(args.out, "--out")
    check_executor_options(args.executor, args.scheduler)
    names = resolve_method_names(args.methods)
    params = load_params_file(args.params) if args.params else {}
    if args.device:
        for name in names:
            if get_method_class(name).kind == "learned":
                params[name] = {**params.get(name, {}), "device": args.device}
    dataset = _open_dataset(args)
    burst = _burst_spec(args)
    workers = args.workers if args.workers is not None else available_cores()
    config = RunConfig(method_names=names, dataset=dataset, out_root=args.out, noise_mode=args.noise,
                       save_outputs=args.save_outputs, params=params, command=provenance.command_line(),
                       burst=burst, workers=workers, executor=args.executor, scheduler=args.scheduler,
                       fresh=args.fresh)
    frames = f", {burst.frames}-frame bursts" if burst else ""
    print(f"running {', '.join(names)} on {dataset.name} ({len(dataset.items)} images, noise: {args.noise}{frames})",
          file=sys.stderr)
    result = run_benchmark(config)
    print(to_markdown(result.summary))
    print(f"\nresults: {result.run_dir}")
    if args.report:
        _report_after_run(result.run_dir, result.interrupted)
    if result.interrupted:
        return 128 + (result.signal or signal.SIGINT)
    return 0 if result.succeeded else EXIT_NOTHING_SUCCEEDED


def _report_after_run(run_dir: Path, interrupted: bool) -> None:
    """``bench run --report``: write the report; a failure is one line on stderr and never changes the run's
    exit status (its tables are already written)."""
    from bench.report import REPORT_FILE, write_report

    out = run_dir / REPORT_FILE
    if interrupted:
        print(f"report: skipped because the run was interrupted (python -m bench report {run_dir} writes it)",
              file=sys.stderr)
        return
    try:
        print(f"report: {write_report(run_dir, out)}")
    except KeyboardInterrupt:
        print(f"error: {out}: report not written (interrupted)", file=sys.stderr)
    except Exception as exc:  # the run's tables must never be lost to a report problem
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {out}: report not written ({detail})", file=sys.stderr)


def _cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report

    if args.out:
        ensure_writable_file(args.out, "--out")
    out = write_report(args.run_dir, args.out)
    print(f"report: {out}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from bench.tune import tune, tunable_params, write_params
    from methods.registry import get_method_class

    name = get_method_class(args.method).name
    if args.grid < 2 or args.rounds < 1:
        raise BenchError("--grid must be at least 2 and --rounds at least 1")
    dataset = _open_dataset(args)
    out = args.out or Path("results") / dataset.name / "tuned" / f"{name}.json"
    ensure_writable_file(out, "--out")
    specs = tunable_params(name)
    print(f"tuning {name} on {dataset.name} ({len(dataset.items)} images, noise: {args.noise}); parameters: "
          f"{', '.join(s.name for s in specs)}", file=sys.stderr)
    result = tune(name, dataset, noise_mode=args.noise, grid=args.grid, rounds=args.rounds,
                  log=lambda message: print(message, file=sys.stderr, flush=True), burst=_burst_spec(args))
    write_params(out, result)
    result.trials.to_csv(out.with_name(f"{name}.trials.csv"), index=False)
    tuned = {s.name for s in specs}
    print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in result.best_params.items() if k in tuned))
    print(f"mean Score {result.best_score:.3f} on the {len(dataset.items)} tuning images "
          f"(defaults: {result.default_score:.3f}); {len(result.trials)} settings tried")
    print(f"params: {out}  (use: python -m bench run --methods {name} --params {out})")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from bench.train import TrainConfig, check_output_folder, log_to_stderr, train
    from methods.toolkit.learned import learned_method_class

    learned_method_class(args.network)  # BenchError naming the networks there are
    out = args.out or Path("checkpoints") / args.network
    ensure_writable_folder(out, "--out")
    check_output_folder(out, resume=args.resume, overwrite=args.overwrite)  # before the data is read
    net_config = parse_network_config(args.config, args.network)
    config = TrainConfig(network=args.network, out=out,
                         steps=args.steps, clean_dirs=args.clean_dir, data=args.data, net_config=net_config,
                         batch=args.batch, patch=args.patch, lr=args.lr, loss=args.loss,
                         fourier_weight=args.fourier_weight, adjacent_weight=args.adjacent_weight,
                         val_every=args.val_every, device=args.device, threads=args.threads, seed=args.seed,
                         resume=args.resume, overwrite=args.overwrite)
    best = train(config, log=log_to_stderr)
    print(f"best weights: {best}  (use: python -m bench run --methods {args.network} "
          f"--params FILE with {{\"{args.network}\": {{\"weights\": \"{best}\"}}}})")
    return 0


def _cmd_speed(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench.speed import speed_table
    from methods.registry import resolve_method_names

    if args.csv:
        ensure_writable_file(args.csv, "--csv")
    names = resolve_method_names(args.methods)
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise BenchError(f"--size must look like 3472x4624, got {args.size!r}") from None
    if height < 64 or width < 64 or height % 2 or width % 2:
        raise BenchError(f"--size needs even sides of at least 64, got {args.size}")
    params = load_params_file(args.params) if args.params else {}
    rows = speed_table(names, params, height, width, log=lambda message: print(message, file=sys.stderr))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0 if all("error" not in row for row in rows) else EXIT_NOTHING_SUCCEEDED


def _cmd_noise(args: argparse.Namespace) -> int:
    from bench.datasets import write_noise_profiles
    from bench.core.noise_model import NoiseProfile
    from bench.noise_report import estimate_dataset, final_round_score

    if args.csv:
        ensure_writable_file(args.csv, "--csv")
    dataset = _open_dataset(args)
    print(f"estimating the noise profile of {len(dataset.items)} images of {dataset.name}", file=sys.stderr)
    table = estimate_dataset(dataset, log=lambda message: print(message, file=sys.stderr, flush=True))
    estimates = {row.image: NoiseProfile(row.a, row.b, "estimate") for row in table.itertuples()}
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        write_noise_profiles(args.csv, estimates)
    known = [image for image in estimates if image in dataset.true_noise]
    print(f"{'image':>6} {'a':>11} {'b':>11}" + (f" {'true a':>11} {'true b':>11}" if known else ""))
    for image, profile in estimates.items():
        line = f"{image:>6} {profile.a:11.4e} {profile.b:11.4e}"
        if image in dataset.true_noise:
            true = dataset.true_noise[image]
            line += f" {true.a:11.4e} {true.b:11.4e}"
        print(line)
    print(f"mean {table['seconds'].mean():.2f} s per image")
    if known and len(known) == len(estimates):
        score = final_round_score(estimates, dataset.true_noise)
        print(f"final-round score: {score:.2f}  "
              "(100 - 100*mean(0.5*min(|a^-a|/a,1) + 0.5*min(|b^-b|/b,1)))")
    if args.csv:
        print(f"written: {args.csv}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from bench import provenance
    from bench.export import Choice, best_in_run, export_submission, write_script_only
    from bench.core.rawio import level_range_problem

    problem = level_range_problem(args.black_level, args.white_level)
    if problem:
        raise BenchError(f"--black-level/--white-level: {problem}")
    if args.script:
        ensure_writable_file(args.script, "--script")
    else:
        ensure_writable_folder(args.out, "--out")
        ensure_writable_file(args.out.parent / "result.zip", "--out's result.zip")
    if args.kind and not args.best:
        raise BenchError("--kind goes with --best")
    choice = best_in_run(args.best, args.kind) if args.best else Choice(args.method, {})
    if args.params:
        overrides = load_params_file(args.params).get(choice.name, {})
        choice = dataclasses.replace(choice, params={**choice.params, **overrides})
    if args.best:
        print(f"best in {args.best}: {choice.name} (mean Score {choice.score:.2f})", file=sys.stderr)
    if args.script:
        script = write_script_only(choice, args.script, args.black_level, args.white_level)
        print(f"wrote {args.script} ({script} of {choice.name})")
        return 0
    if args.data is None:
        from bench.embedded import embedded_dataset

        args.data = embedded_dataset(log=lambda message: print(message, file=sys.stderr)).root
    result = export_submission(choice, args.data, args.out, args.black_level, args.white_level,
                               command=provenance.command_line(),
                               log=lambda message: print(message, file=sys.stderr, flush=True))
    return _report_verification(result.result_dir, result.problems)


def _cmd_verify(args: argparse.Namespace) -> int:
    from bench.export import verify_submission

    problems = verify_submission(args.result_dir, args.data,
                                 log=lambda message: print(message, file=sys.stderr, flush=True))
    return _report_verification(args.result_dir, problems)


def _report_verification(result_dir: Path, problems: list[str]) -> int:
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        print(f"{result_dir}: {len(problems)} problem(s); this is not a valid submission")
        return EXIT_NOTHING_SUCCEEDED
    print(f"verified: {result_dir} (layout, names, sizes, value range, byte-identical re-run of the exported "
          f"script alone) and {result_dir.parent / 'result.zip'}")
    return 0


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


def _internal_error(exc: BaseException, debug: bool) -> int:
    """Report an unexpected exception: its full traceback with ``--debug``, else one line and the file the
    traceback was saved to."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    saved = _save_traceback(exc)
    where = f"traceback in {saved}" if saved else "the traceback could not be saved"
    print(f"error: internal error: {first_line(exc)} ({where}; `python -m bench --debug ...` prints it)",
          file=sys.stderr)
    return EXIT_INTERNAL_ERROR


def _save_traceback(exc: BaseException) -> Path | None:
    """Write the command line and ``exc``'s traceback to a new temporary file; its path, or None if that fails."""
    from bench import provenance

    try:
        handle, name = tempfile.mkstemp(prefix="raw-bench-error-", suffix=".log")
        with open(handle, "w", errors="backslashreplace") as log:
            log.write(provenance.command_line() + "\n\n")
            traceback.print_exception(exc, file=log)
    except OSError:
        return None
    return Path(name)


def _silence_stdout() -> None:
    """Point stdout at the null device, so that Python's own flush at exit does not fail on the closed pipe
    again (what the Python documentation advises for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
