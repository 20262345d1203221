"""schemathesis against the running service with the shipped bundle: every check, on a small
budget (schemathesis.toml says what JSON Schema cannot express)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.served import shipped_service

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_PER_OPERATION = 12


def test_the_service_passes_every_schemathesis_check(tmp_path: Path) -> None:
    with shipped_service() as url:
        st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
        run = subprocess.run(
            [st, "run", f"{url}/openapi.json", "--checks", "all", "--no-color",
             "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:]
