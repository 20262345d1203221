"""The service as a user starts it (`python -m app`), serving the shipped bundle on a free
port: for the tests that drive it from outside (browser, curl examples, schemathesis)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.settings import DEFAULT_BUNDLE_DIR

ROOT = Path(__file__).resolve().parents[1]
READY_WITHIN_S = 180


@contextmanager
def shipped_service(**env: str) -> Iterator[str]:
    """-> the base URL once /health/ready answers 200; ``env`` adds GAN3D_* settings."""
    with service(**env) as (url, _):
        yield url


@contextmanager
def service(**env: str) -> Iterator[tuple[str, int]]:
    """:func:`shipped_service`, yielding (base URL, the server's process id); ``env`` may name
    another bundle (GAN3D_BUNDLE_DIR)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full = {
        **os.environ,
        "GAN3D_PORT": str(port),
        "GAN3D_LOG_LEVEL": "warning",
        "GAN3D_BUNDLE_DIR": str(ROOT / DEFAULT_BUNDLE_DIR),
        **env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=full, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the service did not become ready in {READY_WITHIN_S} s")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
