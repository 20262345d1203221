"""The service and its tests never import torch: the app installs without it, and its tests
run where only the service's dependencies (and onnx, for the tiny test bundles) are installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_app_and_its_tests_import_without_torch() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import app.main, app.__main__, tests.app\n"
        "for m in pkgutil.iter_modules(tests.app.__path__):\n"
        "    importlib.import_module('tests.app.' + m.name)\n"
        "print(sorted(k for k in sys.modules if k == 'torch' or k.startswith('torch.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
