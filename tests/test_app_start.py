"""The service package starts without torch, and readiness follows bundle verification."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def test_importing_and_creating_app_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import app, app.bundle, app.main, app.__main__\n"
        "from app.main import create_app\n"
        "create_app()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'training'})\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_contract_imports_without_fastapi() -> None:
    code = "import sys, app.bundle; sys.exit(1 if 'fastapi' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_ready_with_verified_bundle(tiny_bundle: Path) -> None:
    with TestClient(create_app(Settings(bundle_dir=tiny_bundle))) as client:
        assert client.get("/health/live").json() == {"status": "alive"}
        r = client.get("/health/ready")
        assert r.status_code == 200 and r.json()["bundle"] == "tiny-test"
        assert client.get("/v1/model").json()["latent"]["size"] == 8


def test_not_ready_when_bundle_fails(tiny_bundle: Path) -> None:
    (tiny_bundle / "generator.onnx").write_bytes(b"garbage")
    with TestClient(create_app(Settings(bundle_dir=tiny_bundle))) as client:
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert "generator.onnx" in r.json()["detail"] and "sha256" in r.json()["detail"]
        assert client.get("/v1/model").status_code == 503


def test_settings_from_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAN3D_PORT", "9001")
    monkeypatch.setenv("GAN3D_BUNDLE_DIR", str(tmp_path))
    s = Settings()
    assert s.port == 9001 and s.bundle_dir == tmp_path


def test_serve_help_prints_usage_and_does_not_start() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "GAN3D_PORT" in out.stdout and "usage" in out.stdout


def test_bad_environment_is_one_line_naming_the_variable_and_exit_2() -> None:
    import os

    env = {**os.environ, "GAN3D_PORT": "abc"}
    out = subprocess.run(
        [sys.executable, "-m", "app"], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "GAN3D_PORT='abc'" in out.stderr


def test_providers_accept_comma_separated_names_and_default_to_auto(monkeypatch) -> None:
    from app.settings import Settings

    monkeypatch.setenv("GAN3D_PROVIDERS", "CPUExecutionProvider")
    assert Settings().providers == ["CPUExecutionProvider"]
    monkeypatch.setenv("GAN3D_PROVIDERS", '["CUDAExecutionProvider","CPUExecutionProvider"]')
    assert Settings().providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.delenv("GAN3D_PROVIDERS")
    assert Settings().providers == []
