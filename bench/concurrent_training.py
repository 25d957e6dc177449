"""The two-trainings slowdown: seconds per demo VISinger update alone and with two trainings at once.

    .venv/bin/python bench/concurrent_training.py                  # the project's thread policy (config/threads.py)
    .venv/bin/python bench/concurrent_training.py --policy off     # the libraries' defaults (the "before" case)
    .venv/bin/python bench/concurrent_training.py --policy both    # both, side by side in one run

Each training is `bench/train_speed.py` (the demo task's own training step, both optimizers, on a
synthetic batch) in its own process, as two `tasks/runs/run.py` runs would be. For each policy it
runs one training alone, then two started together, and prints the median seconds per update of
each and the slowdown (two at once / alone). Sharing the cores fairly would give about 2x on a
machine with as many cores as one training uses; far more is the OpenMP spin-wait cliff.

The machine's load average is printed before and after: on a shared machine other jobs change the
figures, so compare only numbers from one run.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from config.threads import POLICY_SWITCH, available_cores  # noqa: E402

_RATE = re.compile(r"([0-9.]+) updates/s")
_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", POLICY_SWITCH)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _environment(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARIABLES}
    if policy == "off":
        env[POLICY_SWITCH] = "off"
    return env


def _run_together(count: int, policy: str, args: argparse.Namespace) -> list[float]:
    """Seconds per update of each of `count` trainings started at the same time."""
    command = [
        sys.executable, str(REPO / "bench" / "train_speed.py"), "--config", args.config, "--batch", str(args.batch),
        "--seconds", str(args.seconds), "--warmup", "1", "--steps", str(args.steps), "--repeats", str(args.repeats),
    ]
    processes = [
        subprocess.Popen(command, cwd=REPO, env=_environment(policy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(count)
    ]
    seconds = []
    for process in processes:
        output, _ = process.communicate()
        match = _RATE.search(output)
        if process.returncode != 0 or not match:
            raise SystemExit(f"bench/train_speed.py failed (exit {process.returncode}):\n{output}")
        seconds.append(1.0 / float(match.group(1)))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", choices=("on", "off", "both"), default="both")
    parser.add_argument("--config", default="config/models/visinger_demo.yaml")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each synthetic item")
    parser.add_argument("--steps", type=int, default=5, help="updates per timed block")
    parser.add_argument("--repeats", type=int, default=4, help="timed blocks (the median is reported)")
    args = parser.parse_args()
    policies = ("off", "on") if args.policy == "both" else (args.policy,)
    print(f"cores available to this process: {available_cores()}; load average before: {_load()}")
    print(f"{args.config}, batch {args.batch} x {args.seconds:g} s, {args.steps * args.repeats} timed updates per training")
    rows = []
    for policy in policies:
        started = time.perf_counter()
        alone = _run_together(1, policy, args)[0]
        together = _run_together(2, policy, args)
        slowdown = statistics.mean(together) / alone
        rows.append((policy, alone, together, slowdown))
        print(
            f"policy {policy:3s}: alone {alone:.2f} s/update; two at once {together[0]:.2f} and {together[1]:.2f} s/update; "
            f"slowdown x{slowdown:.1f} ({time.perf_counter() - started:.0f} s; load average now {_load()})"
        )
    if len(rows) == 2:
        print(f"two-at-once time per update, policy off / on: {statistics.mean(rows[0][2]) / statistics.mean(rows[1][2]):.1f}x")


if __name__ == "__main__":
    main()
