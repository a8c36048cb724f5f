"""The argument parser of ``python -m bench``: every subcommand, its options and its handler."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.burst import DEFAULT_MAX_ROTATION, DEFAULT_MAX_SHIFT, DEFAULT_SEED
from bench.core.levels import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, LEVEL_MODES
from bench.cli.commands import (cmd_export, cmd_list, cmd_noise, cmd_raw_pairs, cmd_report, cmd_run, cmd_speed,
                                 cmd_train, cmd_tune, cmd_verify)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="RAW (DNG) denoising benchmark, "
                                     "scored like the ZTE 2022 challenge.")
    parser.add_argument("--debug", action="store_true",
                        help="on an unexpected error, print its full traceback (instead of saving it to a file)")
    commands = parser.add_subparsers(title="commands")

    listing = commands.add_parser("list", help="show registered methods, their parameters and availability")
    listing.add_argument("pattern", nargs="?", default="*", help="wildcard filter on method names")
    listing.set_defaults(handler=cmd_list)

    levels = argparse.ArgumentParser(add_help=False)
    levels.add_argument("--levels", choices=LEVEL_MODES, default="competition",
                        help=f"black and white levels: the competition's {COMPETITION_BLACK_LEVEL}/"
                             f"{COMPETITION_WHITE_LEVEL} for every file whatever its tags say (default, as the "
                             "organisers did), or each file's own DNG tags (black per channel, white)")
    levels.add_argument("--black-level", type=int,
                        help=f"black level for every file, over --levels (competition: {COMPETITION_BLACK_LEVEL})")
    levels.add_argument("--white-level", type=int,
                        help=f"white level for every file, over --levels (competition: {COMPETITION_WHITE_LEVEL})")
    data = argparse.ArgumentParser(add_help=False, parents=[levels])
    data.add_argument("--data", type=Path, help="dataset folder (competition layout); default: the embedded set")
    data.add_argument("--limit", type=int, help="use only the first N images")
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
    run.set_defaults(handler=cmd_run)

    tune = commands.add_parser("tune", parents=[data, noise, burst],
                               help="search a method's declared parameter ranges on training pairs")
    tune.add_argument("--method", required=True, help="the method to tune")
    tune.add_argument("--grid", type=int, default=5, help="values tried per numeric parameter (default 5)")
    tune.add_argument("--rounds", type=int, default=1, help="passes over all parameters (default 1)")
    tune.add_argument("--out", type=Path,
                      help="params JSON to write (default: results/<dataset>/tuned/<method>.json); "
                           "the trials go beside it as <method>.trials.csv")
    tune.set_defaults(handler=cmd_tune)

    training = commands.add_parser("train", parents=[levels], help="train a packed-RAW network (nafnet or dncnn); "
                                   "--levels applies to --data's pairs")
    training.add_argument("network", help="the learned method whose network to train (e.g. nafnet, dncnn)")
    training.add_argument("--clean-dir", type=Path, action="append", default=[],
                          help="folder of clean sRGB images for synthetic pairs (repeatable)")
    training.add_argument("--data", type=Path, help="competition-layout folder of real training pairs")
    training.add_argument("--raw-dir", type=Path, action="append", default=[],
                          help="folder of real captures (any Bayer DNG, each with its own levels) made noisy on "
                               "the fly with the organisers' generator (repeatable)")
    training.add_argument("--raw-hold-out", action="append", default=[], metavar="NAME",
                          help="a capture (file stem or name) kept out of training as real-raw validation "
                               "(repeatable; default: the last capture by name)")
    training.add_argument("--raw-fraction", type=float, default=0.5,
                          help="share of the patches from --raw-dir when other sources are given (default 0.5)")
    training.add_argument("--downscale", type=float, default=1.0,
                          help="shrink each sRGB crop this many times (area-averaged) before unprocessing "
                               "(default 1: none)")
    training.add_argument("--blur-probability", type=float, default=1.0,
                          help="chance that a synthetic patch gets the optical blur (default 1: always)")
    training.add_argument("--max-blur", type=float, default=1.2, help="largest blur sigma in pixels (default 1.2)")
    training.add_argument("--init", type=Path, metavar="WEIGHTS",
                          help="start from this weights file (.pth) instead of random weights")
    training.add_argument("--reference", default="", metavar="METHOD",
                          help="also score this method (e.g. bm3d) once on the validation pairs, for the card")
    training.add_argument("--steps", type=int, default=2000, help="optimiser steps in all (default 2000)")
    training.add_argument("--batch", type=int, default=8, help="patches per step (default 8)")
    training.add_argument("--patch", type=int, default=64, help="patch side in packed pixels (default 64)")
    training.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    training.add_argument("--loss", choices=("l1", "l1_sigma", "psnr"), default="l1",
                          help="main loss (default l1; l1_sigma: L1 in units of each pixel's noise std)")
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
    training.set_defaults(handler=cmd_train)

    raw_pairs = commands.add_parser("raw-pairs", help="write a competition-layout pair folder from real captures "
                                    "(each at the five noise groups), e.g. a real-raw validation set")
    raw_pairs.add_argument("--raw-dir", type=Path, action="append", required=True,
                           help="folder of captures (any Bayer DNG; repeatable)")
    raw_pairs.add_argument("--only", action="append", default=[], metavar="NAME",
                           help="use only this capture (file stem or name; repeatable)")
    raw_pairs.add_argument("--side", type=int, default=0,
                           help="keep the central SIDE x SIDE mosaic of each capture (default 0: all of it)")
    raw_pairs.add_argument("--seed", type=int, default=0)
    raw_pairs.add_argument("--out", type=Path, required=True, help="the folder to write (new or empty)")
    raw_pairs.set_defaults(handler=cmd_raw_pairs)

    speed = commands.add_parser("speed", help="time and peak memory of methods on one full-size frame")
    speed.add_argument("--methods", help="comma-separated names or wildcards (required, except with --full-table: "
                                         "default every single-frame method)")
    speed.add_argument("--size", default="3472x4624", help="frame size HxW in sensor pixels (default 3472x4624)")
    speed.add_argument("--params", type=Path, help='JSON file {"method": {"param": value}}, as bench run takes it')
    speed.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    speed.add_argument("--full-table", action="store_true",
                       help="time the methods and the harness with a worker's share of the cores and project the "
                            "wall time of the --pairs table on --workers workers")
    speed.add_argument("--workers", type=int, help="with --full-table: the run's workers (default: one per core)")
    speed.add_argument("--pairs", type=int, default=100, help="with --full-table: images in the table (default 100)")
    speed.add_argument("--save-outputs", action="store_true",
                       help="with --full-table: the run saves every result's DNG (bench run --save-outputs)")
    speed.set_defaults(handler=cmd_speed)

    export = commands.add_parser("export", parents=[levels],
                                 help="write a competition submission for one method, then verify it")
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
    export.set_defaults(handler=cmd_export)

    verify = commands.add_parser("verify", help="check a submission folder written by `bench export`")
    verify.add_argument("result_dir", type=Path, metavar="RESULT_DIR")
    verify.add_argument("--data", type=Path, help="the test images (default: the folder recorded at export)")
    verify.add_argument("--levels", choices=LEVEL_MODES,
                        help="the levels the submission was made with (default: those export.json records; "
                             "another is a problem)")
    verify.set_defaults(handler=cmd_verify)

    estimate = commands.add_parser("noise", parents=[data],
                                   help="estimate the noise profile (a, b) of every noisy image")
    estimate.add_argument("--csv", type=Path, help="write image,a,b to this CSV file")
    estimate.set_defaults(handler=cmd_noise)

    report = commands.add_parser("report", help="write a self-contained HTML report of a `bench run` folder")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, metavar="FILE", help="HTML file to write (default: RUN_DIR/report.html)")
    report.add_argument("--levels", choices=LEVEL_MODES,
                        help="the levels the run was scored with (default: those run.json records; another is "
                             "an error)")
    report.set_defaults(handler=cmd_report)
    return parser


