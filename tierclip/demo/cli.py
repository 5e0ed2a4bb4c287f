"""`just demo [--pool real|synth] [--full] [--out DIR]`."""

from __future__ import annotations

import argparse
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
                             "(about an hour on 2 cores; docs/analysis.md)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    report = run_demo(args.out, GRIDS[args.pool, args.full])
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Report: {report / 'index.html'} (summary: {report / 'summary.md'})")
