"""The process's CPU thread policy, applied by every CLI before it imports torch.

Why: PyTorch's CPU kernels run on an OpenMP pool (GNU libgomp in the CPU wheels) whose idle threads
*spin* while they wait for the next parallel region. With one process per machine that is fast; with
two trainings (or a training and a render) on the same cores, each process's spinning threads take
the cores the other process's working threads need, every small operator ends in a barrier that
waits for a descheduled thread, and an update of the demo VISinger went from ~0.7 s to ~17 s on a
2-core machine (issue 13; bench/concurrent_training.py measures it). So:

- ``OMP_WAIT_POLICY=PASSIVE``: waiting OpenMP threads sleep instead of spinning (libgomp reads it
  once, when torch is imported, hence "before torch").
- ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``: the cores this process may actually run on
  (``os.sched_getaffinity``, which honours ``taskset`` and container CPU sets), not the machine's
  core count that OpenMP assumes.

A value the user has set wins (``setdefault``). ``SVS_THREAD_POLICY=off`` leaves everything at the
libraries' defaults (used by the benchmark to measure the "before" case).
"""
from __future__ import annotations

import os

POLICY_SWITCH = "SVS_THREAD_POLICY"


def available_cores() -> int:
    """Cores this process may run on (affinity mask; falls back to `os.cpu_count()`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def apply_thread_policy() -> dict[str, str]:
    """Set the OpenMP/MKL environment (see the module doc); returns the variables it set now."""
    if os.environ.get(POLICY_SWITCH, "").lower() in ("off", "0", "false", "no"):
        return {}
    wanted = {
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": str(available_cores()),
        "MKL_NUM_THREADS": str(available_cores()),
    }
    applied = {}
    for name, value in wanted.items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    return applied
