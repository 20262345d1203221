"""The README's curl examples run as written (from the repository root) against the service
serving the shipped bundle, each exiting 0 (they use curl -f: an HTTP error fails)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _api_examples() -> list[str]:
    """Every curl command (continuation lines joined) in the README's bash blocks."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        # a command may span lines inside a quoted JSON body: keep reading until quotes close
        current = ""
        for line in joined.splitlines():
            if not current and not line.startswith("curl "):
                continue
            current = f"{current}\n{line}" if current else line
            if current.count("'") % 2 == 0:
                commands.append(current)
                current = ""
    return commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = {**os.environ, "GAN3D_PORT": str(port), "GAN3D_PROVIDERS": "CPUExecutionProvider"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready") as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("the service did not become ready in 180 s")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_readme_has_the_examples() -> None:
    cmds = _api_examples()
    assert len(cmds) >= 8
    assert any("examples/table.png" in c for c in cmds)
    assert any("examples/chair.obj" in c for c in cmds)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("index", range(len(_api_examples())))
def test_readme_example_runs(server: int, index: int, tmp_path: Path) -> None:
    cmd = _api_examples()[index].replace("localhost:8000", f"127.0.0.1:{server}")
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # paths as from the repo root
    done = subprocess.run(
        ["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (cmd, done.stderr[-500:])
