"""The service as a user starts it (`python -m app`), serving the shipped bundle on a free
port: for the tests that drive it from outside (browser, curl examples, schemathesis)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
    (port,) = _free_ports(1)
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
        if not _await_ready(proc, [f"{url}/health/ready"], poll_s=0.1):
            raise RuntimeError(f"the service did not become ready in {READY_WITHIN_S} s")
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _await_ready(proc: subprocess.Popen, urls: list[str], *, poll_s: float) -> bool:
    """Poll until every URL answers 200 -> True; False once ``proc`` exits or READY_WITHIN_S
    has passed."""
    deadline = time.monotonic() + READY_WITHIN_S
    while True:
        try:
            if all(httpx.get(u, timeout=1).status_code == 200 for u in urls):
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            return False
        time.sleep(poll_s)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


TRITON_PYTHON_ENV = "GAN3D_TRITON_PYTHON"  # the interpreter of the PyTriton environment


@contextmanager
def triton_server(bundle: Path, python: str, *, threads: int = 1) -> Iterator[dict[str, str]]:
    """A real Triton Inference Server (PyTriton's bundled binary; scripts/pytriton_bundle.py)
    serving ``bundle``'s networks -> {"http": "http://127.0.0.1:P", "grpc": "grpc://...",
    "metrics": Triton's Prometheus URL} once every model is ready. ``python``: the PyTriton
    environment's interpreter (scripts/test.sh makes .venv-triton)."""
    http, grpc, metrics = _free_ports(3)
    cmd = [python, str(ROOT / "scripts" / "pytriton_bundle.py"), str(bundle)]
    cmd += ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    cmd += ["--threads", str(threads)]
    # the server's log, in the temporary directory (never beside a shipped bundle); read into the
    # error when the server does not come up, removed when it stops
    log = tempfile.NamedTemporaryFile("w", prefix=f"triton-{http}-", suffix=".log", delete=False)  # noqa: SIM115
    # its own process group: the tritonserver and backend stubs it starts stop with it
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
    )
    base = f"http://127.0.0.1:{http}"
    # PyTriton loads the models one by one after the server is up (and an empty server is ready)
    models = [
        f"{base}/v2/models/gan3d_{f['role']}/ready"
        for f in json.loads((bundle / "manifest.json").read_text())["files"]
        if f.get("onnx")
    ]
    try:
        if not _await_ready(proc, models, poll_s=0.2):
            log.flush()
            tail = Path(log.name).read_text()[-3000:]
            raise RuntimeError(f"the Triton server did not become ready:\n{tail}")
        yield {
            "http": base,
            "grpc": f"grpc://127.0.0.1:{grpc}",
            "metrics": f"http://127.0.0.1:{metrics}/metrics",
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        stop_by = time.monotonic() + 30
        with suppress(ProcessLookupError):  # raised once the whole group has exited
            while True:
                proc.poll()
                os.killpg(proc.pid, 0 if time.monotonic() < stop_by else signal.SIGKILL)
                time.sleep(0.2)
        proc.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)
