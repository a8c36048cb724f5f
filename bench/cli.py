"""Command line: ``python -m bench list`` and ``python -m bench run``.

Errors in the user's input print one line (``error: <file>: <problem>``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.errors import BenchError

EXIT_NOTHING_SUCCEEDED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="RAW (DNG) denoising benchmark, "
                                     "scored like the ZTE 2022 challenge.")
    commands = parser.add_subparsers(title="commands")

    listing = commands.add_parser("list", help="show registered methods, their parameters and availability")
    listing.add_argument("pattern", nargs="?", default="*", help="wildcard filter on method names")
    listing.set_defaults(handler=_cmd_list)

    run = commands.add_parser("run", help="denoise, score and tabulate methods on a dataset")
    run.add_argument("--methods", required=True, help="comma-separated names or wildcards, e.g. noisy,bm3d")
    run.add_argument("--data", type=Path, help="dataset folder (competition layout); default: the embedded set")
    run.add_argument("--limit", type=int, help="use only the first N images")
    run.add_argument("--out", type=Path, default=Path("results"), help="output root (default: results/)")
    run.add_argument("--save-outputs", action="store_true", help="write each result as outputs/<method>/<image>.dng")
    run.add_argument("--noise", choices=("estimate", "oracle"), default="estimate",
                     help="noise profile given to methods: estimated from each image (blind, default) or the "
                          "dataset's true one (noise_profile.csv)")
    run.add_argument("--params", type=Path, help='JSON file {"method": {"param": value}} overriding defaults')
    run.add_argument("--black-level", type=int, default=1024, help="black level (competition: 1024)")
    run.add_argument("--white-level", type=int, default=16383, help="white level (competition: 16383)")
    run.set_defaults(handler=_cmd_run)
    return parser


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
        for spec in cls.params():
            bounds = ""
            if spec.choices is not None:
                bounds = f"  one of {list(spec.choices)}"
            elif spec.low is not None or spec.high is not None:
                bounds = f"  tuning range [{spec.low}, {spec.high}]"
            print(f"    --  {spec.name}: {spec.type.__name__} = {spec.default!r}{bounds}  {spec.doc}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from bench import provenance
    from bench.datasets import open_dataset
    from bench.embedded import embedded_dataset
    from bench.runner import RunConfig, run_benchmark
    from bench.tables import to_markdown
    from methods.registry import resolve_method_names

    names = resolve_method_names(args.methods)
    params = load_params_file(args.params) if args.params else {}
    if args.data is not None:
        dataset = open_dataset(args.data, black_level=args.black_level, white_level=args.white_level)
    else:
        dataset = embedded_dataset(log=lambda message: print(message, file=sys.stderr))
    dataset = dataset.limited(args.limit)
    config = RunConfig(method_names=names, dataset=dataset, out_root=args.out, noise_mode=args.noise,
                       save_outputs=args.save_outputs, params=params, command=provenance.command_line())
    print(f"running {', '.join(names)} on {dataset.name} ({len(dataset.items)} images, noise: {args.noise})",
          file=sys.stderr)
    result = run_benchmark(config)
    print(to_markdown(result.summary))
    print(f"\nresults: {result.run_dir}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 0 if result.succeeded else EXIT_NOTHING_SUCCEEDED


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
