"""Cores the service may use: a container's cgroup CPU quota caps the affinity count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.cpus import available_cores, quota_cores

AFFINITY = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _v2(root: Path, text: str) -> Path:
    root.mkdir(exist_ok=True)
    (root / "cpu.max").write_text(text)
    return root


def _v1(root: Path, quota: str, period: str = "100000") -> Path:
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota)
    (root / "cpu" / "cpu.cfs_period_us").write_text(period)
    return root


@pytest.mark.parametrize(
    ("text", "cores"),
    [("150000 100000\n", 1.5), ("50000 100000", 0.5), ("max 100000\n", None), ("junk", None)],
)
def test_cgroup_v2_quota(tmp_path: Path, text: str, cores: float | None) -> None:
    assert quota_cores(_v2(tmp_path / "cg", text)) == cores


def test_cgroup_v1_quota_and_no_cgroup(tmp_path: Path) -> None:
    assert quota_cores(_v1(tmp_path / "a", "200000")) == 2.0
    assert quota_cores(_v1(tmp_path / "b", "-1")) is None
    assert quota_cores(tmp_path / "missing") is None


def test_the_quota_caps_the_cores_rounded_up(tmp_path: Path) -> None:
    assert available_cores(_v2(tmp_path / "half", "50000 100000")) == 1
    assert available_cores(_v2(tmp_path / "big", "100000000 100000")) == AFFINITY
    assert available_cores(_v2(tmp_path / "none", "max 100000")) == AFFINITY
    if AFFINITY >= 2:
        assert available_cores(_v2(tmp_path / "q", "150000 100000")) == 2
