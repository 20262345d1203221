"""schemathesis against the running service with the shipped bundle: every check, on a small
budget (schemathesis.toml says what JSON Schema cannot express)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.settings import DEFAULT_BUNDLE_DIR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_PER_OPERATION = 12


def test_the_service_passes_every_schemathesis_check(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GAN3D_PORT": str(port),
        "GAN3D_LOG_LEVEL": "warning",
        "GAN3D_BUNDLE_DIR": str(ROOT / DEFAULT_BUNDLE_DIR),
    }
    server = subprocess.Popen([sys.executable, "-m", "app"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
        run = subprocess.run(
            [st, "run", f"{url}/openapi.json", "--checks", "all", "--no-color",
             "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert run.returncode == 0, run.stdout[-6000:]
