"""How many cores the service may use: its CPU affinity, capped by a cgroup CPU quota.

A container started with ``--cpus 2`` (or a Kubernetes CPU limit) still sees every core of its
host: ``os.sched_getaffinity`` and ONNX Runtime's default thread count ignore the quota, so a
64-core host would get 64 meshing processes and as many ORT threads, all throttled to 2 cores'
worth of time. The quota lives in the cgroup files (v2: ``cpu.max``; v1: ``cpu.cfs_quota_us``
over ``cpu.cfs_period_us``); no well-kept library reads them for us (psutil does not), so they
are read here.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_cores(root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup CPU quota in cores (1.5 = one and a half cores' time), None when unlimited
    or unreadable."""
    try:
        v2 = root / "cpu.max"
        if v2.exists():  # "max 100000" (no limit) or "150000 100000"
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 else None  # -1: no limit
    except (OSError, ValueError, ZeroDivisionError):
        return None


def available_cores(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may run on, capped by the cgroup quota (rounded up); at least 1."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    quota = quota_cores(root)
    return max(1, min(cores, math.ceil(quota))) if quota else max(1, cores)
