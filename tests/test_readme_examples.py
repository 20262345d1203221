"""The curl examples of the README and of docs/api.md run as written (from the repository root)
against the service serving the shipped bundle, each exiting 0 (they use curl -f: an HTTP
error fails)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.served import shipped_service

ROOT = Path(__file__).resolve().parents[1]


DOCUMENTS = ("README.md", "docs/api.md")


def _api_examples(documents: tuple[str, ...] = DOCUMENTS) -> list[str]:
    """Every curl command (continuation lines joined) in the documents' bash blocks, once."""
    text = "\n".join((ROOT / d).read_text() for d in documents)
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        # a command may span lines inside a quoted JSON body: keep reading until quotes close
        current = ""
        for line in joined.splitlines():
            if not current and not line.startswith("curl "):
                continue
            current = f"{current}\n{line}" if current else line
            if current.count("'") % 2 == 0:
                if current not in commands:
                    commands.append(current)
                current = ""
    return commands


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with shipped_service(GAN3D_PROVIDERS="CPUExecutionProvider") as url:
        yield url


def test_readme_has_the_examples() -> None:
    assert len(_api_examples(("README.md",))) >= 5
    cmds = _api_examples()
    assert len(cmds) >= 8
    assert any("examples/table.png" in c for c in cmds)
    assert any("examples/chair.obj" in c for c in cmds)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("index", range(len(_api_examples())))
def test_readme_example_runs(server: str, index: int, tmp_path: Path) -> None:
    cmd = _api_examples()[index].replace("localhost:8000", server.removeprefix("http://"))
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # paths as from the repo root
    done = subprocess.run(
        ["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (cmd, done.stderr[-500:])
