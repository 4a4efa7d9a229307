"""What the timing benchmarks share: their --threads and --clock flags, and the clock chosen."""

from __future__ import annotations

import argparse
import time

import torch

_clock = time.perf_counter


def clock() -> float:
    """Seconds on the clock that --clock chose: the wall clock, or this process's CPU time."""
    return _clock()


def add_timing_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU time (with --threads 1, robust to other processes' load)")


def apply_timing_args(args: argparse.Namespace) -> None:
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
