"""What each subcommand does once its arguments are parsed: one ``cmd_<name>(args) -> exit status`` each."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL
from bench.cli.checks import (check_executor_options, ensure_writable_file, ensure_writable_folder, load_params_file,
                              parse_network_config)

EXIT_NOTHING_SUCCEEDED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader has gone


def _level_policy(args: argparse.Namespace):
    """The LevelPolicy of --levels, --black-level and --white-level (BenchError for impossible levels)."""
    from bench.core.levels import LevelPolicy

    return LevelPolicy(args.levels, args.black_level, args.white_level)


def _open_dataset(args: argparse.Namespace):
    """The dataset named by --data (or the embedded one), with the levels of --levels (and
    --black-level/--white-level), cut to --limit."""
    from bench.datasets import open_dataset
    from bench.embedded import embedded_dataset

    if args.data is not None:
        dataset = open_dataset(args.data, black_level=args.black_level, white_level=args.white_level,
                               levels=args.levels)
    else:
        if (args.black_level not in (None, COMPETITION_BLACK_LEVEL)
                or args.white_level not in (None, COMPETITION_WHITE_LEVEL)):
            raise BenchError(f"--black-level/--white-level: the embedded set is made with the competition's "
                             f"{COMPETITION_BLACK_LEVEL}/{COMPETITION_WHITE_LEVEL}; other levels go with --data")
        dataset = dataclasses.replace(embedded_dataset(log=lambda message: print(message, file=sys.stderr)),
                                      levels=_level_policy(args))
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


def cmd_list(args: argparse.Namespace) -> int:
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


def cmd_run(args: argparse.Namespace) -> int:
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
        report_after_run(result.run_dir, result.interrupted)
    if result.interrupted:
        return 128 + (result.signal or signal.SIGINT)
    return 0 if result.succeeded else EXIT_NOTHING_SUCCEEDED


def report_after_run(run_dir: Path, interrupted: bool) -> None:
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


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report

    if args.out:
        ensure_writable_file(args.out, "--out")
    if args.levels is not None:
        from bench.run_record import RunRecord

        scored = RunRecord.read(args.run_dir).level_policy()
        if args.levels != scored.mode:
            raise BenchError(f"{args.run_dir}: was scored with --levels {scored.mode}; its report uses the levels "
                             f"the run used ({scored.describe()}), so --levels {args.levels} does not apply")
    out = write_report(args.run_dir, args.out)
    print(f"report: {out}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
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


def cmd_train(args: argparse.Namespace) -> int:
    from bench.train import TrainConfig, check_output_folder, log_to_stderr, train
    from methods.toolkit.learned import learned_method_class

    learned_method_class(args.network)  # BenchError naming the networks there are
    out = args.out or Path("checkpoints") / args.network
    ensure_writable_folder(out, "--out")
    check_output_folder(out, resume=args.resume, overwrite=args.overwrite)  # before the data is read
    net_config = parse_network_config(args.config, args.network)
    config = TrainConfig(network=args.network, out=out,
                         steps=args.steps, clean_dirs=args.clean_dir, data=args.data, net_config=net_config,
                         raw_dirs=args.raw_dir, raw_hold_out=args.raw_hold_out, raw_fraction=args.raw_fraction,
                         downscale=args.downscale, blur_probability=args.blur_probability, max_blur=args.max_blur,
                         init=args.init, reference=args.reference,
                         batch=args.batch, patch=args.patch, lr=args.lr, loss=args.loss,
                         fourier_weight=args.fourier_weight, adjacent_weight=args.adjacent_weight,
                         val_every=args.val_every, device=args.device, threads=args.threads, seed=args.seed,
                         resume=args.resume, overwrite=args.overwrite, data_levels=_level_policy(args))
    best = train(config, log=log_to_stderr)
    print(f"best weights: {best}  (use: python -m bench run --methods {args.network} "
          f"--params FILE with {{\"{args.network}\": {{\"weights\": \"{best}\"}}}})")
    return 0


def cmd_raw_pairs(args: argparse.Namespace) -> int:
    from bench.real_raw import list_captures, load_capture, select_captures, write_pair_folder

    ensure_writable_folder(args.out, "--out")
    paths = list_captures(args.raw_dir)
    if args.only:
        paths = select_captures(paths, args.only, "--only")
    if args.side and (args.side < 64 or args.side % 2):
        raise BenchError(f"--side must be even and at least 64, not {args.side}")
    captures = [load_capture(path) for path in paths]
    recipe = write_pair_folder(captures, args.out, seed=args.seed, side=args.side)
    for capture in captures:
        print(f"{capture.describe()}")
    print(f"wrote {len(recipe)} pairs to {args.out} (the five noise groups of each capture; true profiles in "
          f"noise_profile.csv)")
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench.speed import speed_table
    from methods.registry import resolve_method_names

    if args.csv:
        ensure_writable_file(args.csv, "--csv")
    if not args.methods and not args.full_table:
        raise BenchError("bench speed needs --methods NAME[,NAME...] (or --full-table)")
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise BenchError(f"--size must look like 3472x4624, got {args.size!r}") from None
    if height < 64 or width < 64 or height % 2 or width % 2:
        raise BenchError(f"--size needs even sides of at least 64, got {args.size}")
    params = load_params_file(args.params) if args.params else {}
    if args.full_table:
        return _full_table(args, params, (height, width))
    names = resolve_method_names(args.methods)
    rows = speed_table(names, params, height, width, log=lambda message: print(message, file=sys.stderr))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0 if all("error" not in row for row in rows) else EXIT_NOTHING_SUCCEEDED


def _full_table(args: argparse.Namespace, params: dict, size: tuple[int, int]) -> int:
    """``bench speed --full-table``: measure, project and print (``bench.full_table``)."""
    from bench.core.processes import available_cores
    from bench.full_table import full_table, single_frame_methods
    from methods.registry import resolve_method_names

    names = resolve_method_names(args.methods) if args.methods else single_frame_methods()
    workers = args.workers if args.workers is not None else available_cores()
    if workers < 1 or args.pairs < 1:
        raise BenchError("--workers and --pairs must be at least 1")
    projection = full_table(names, params, args.pairs, workers, args.save_outputs, size,
                            log=lambda message: print(message, file=sys.stderr, flush=True))
    cores = available_cores()
    print(f"{args.pairs} pairs of {size[0]}x{size[1]}, {len(names)} methods, --workers {workers} on {cores} cores: "
          f"{projection.threads} thread(s) a worker, {projection.images_per_worker} images a worker"
          + (", outputs saved" if args.save_outputs else ""))
    print("\n".join(projection.lines()))
    print(f"projected wall time of the table: {projection.hours(projection.per_image()):.2f} h "
          f"(= ceil({args.pairs} / {workers}) x {projection.per_image():.1f} s; each measured alone with "
          f"{projection.threads} thread(s), workers assumed not to slow each other beyond their share of the cores)")
    if args.csv:
        import pandas as pd

        rows = [{"method": name, "seconds_per_image": seconds} for name, seconds in projection.method_seconds.items()]
        rows += [{"method": f"harness: {stage}", "seconds_per_image": value}
                 for stage, value in projection.harness.items()]
        pd.DataFrame(rows).to_csv(args.csv, index=False)
    return 0 if all(s is not None for s in projection.method_seconds.values()) else EXIT_NOTHING_SUCCEEDED


def cmd_noise(args: argparse.Namespace) -> int:
    from bench.datasets import NOISE_UNITS, write_noise_profiles
    from bench.core.noise_model import NoiseProfile
    from bench.noise_report import estimate_dataset, final_round_score

    if args.csv:
        ensure_writable_file(args.csv, "--csv")
    dataset = _open_dataset(args)
    print(f"estimating the noise profile of {len(dataset.items)} images of {dataset.name}", file=sys.stderr)
    table = estimate_dataset(dataset, log=lambda message: print(message, file=sys.stderr, flush=True))
    estimates = {row.image: NoiseProfile(row.a, row.b, "estimate") for row in table.itertuples()}
    levels = {row.image: (row.black, row.white) for row in table.itertuples()}
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        write_noise_profiles(args.csv, estimates, levels)
    known = [image for image in estimates if image in dataset.true_noise]
    print(f"a, b: var = a*x + b of {NOISE_UNITS}, each file normalised by its own levels "
          f"({dataset.levels.describe()})")
    print(f"{'image':>6} {'a':>11} {'b':>11} {'black':>19} {'white':>5}"
          + (f" {'true a':>11} {'true b':>11}" if known else ""))
    for image, profile in estimates.items():
        line = f"{image:>6} {profile.a:11.4e} {profile.b:11.4e} {levels[image][0]:>19} {levels[image][1]:>5}"
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


def cmd_export(args: argparse.Namespace) -> int:
    from bench import provenance
    from bench.export import Choice, best_in_run, export_submission, write_script_only

    levels = _level_policy(args)
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
        script = write_script_only(choice, args.script, levels)
        print(f"wrote {args.script} ({script} of {choice.name})")
        return 0
    if args.data is None:
        from bench.embedded import embedded_dataset

        args.data = embedded_dataset(log=lambda message: print(message, file=sys.stderr)).root
    result = export_submission(choice, args.data, args.out, levels, command=provenance.command_line(),
                               log=lambda message: print(message, file=sys.stderr, flush=True))
    return _report_verification(result.result_dir, result.problems)


def cmd_verify(args: argparse.Namespace) -> int:
    from bench.export import verify_submission

    problems = verify_submission(args.result_dir, args.data,
                                 log=lambda message: print(message, file=sys.stderr, flush=True), levels=args.levels)
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


