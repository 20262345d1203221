"""GLB outputs pass the Khronos glTF validator (npm gltf-validator) with 0 errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from app.encoding import encode_mesh
from app.meshing import MeshOptions, to_mesh

HERE = Path(__file__).resolve().parents[1] / "node"


def validate(glb: bytes, tmp_path: Path) -> dict:
    """The validator's report for GLB bytes. Needs node and `npm ci --prefix tests/node`."""
    if not (HERE / "node_modules" / "gltf-validator").is_dir() or shutil.which("node") is None:
        pytest.fail(
            "gltf-validator missing: run `npm ci --prefix tests/node` (scripts/test.sh does)"
        )
    path = tmp_path / "shape.glb"
    path.write_bytes(glb)
    out = subprocess.run(
        ["node", str(HERE / "validate.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def _field(r: int = 16) -> np.ndarray:
    c = (np.arange(r) + 0.5) / r * 2 - 1
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    ring = (np.sqrt(x**2 + z**2) - 0.5) ** 2 + y**2 < 0.2**2  # a torus: genus 1
    box = (np.abs(x) < 0.2) & (np.abs(y + 0.5) < 0.3) & (np.abs(z) < 0.2)
    return (ring | box).astype(np.float32)


@pytest.mark.parametrize(
    "options", [MeshOptions(), MeshOptions(upsample=2, smooth_iterations=3, target_faces=800)]
)
def test_glb_has_no_validator_errors(tmp_path: Path, options: MeshOptions) -> None:
    report = validate(encode_mesh(to_mesh(_field(), options), "glb"), tmp_path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]


def test_validator_catches_a_broken_glb(tmp_path: Path) -> None:
    glb = bytearray(encode_mesh(to_mesh(_field()), "glb"))
    glb[12:16] = (int.from_bytes(glb[12:16], "little") + 4).to_bytes(4, "little")  # JSON length
    assert validate(bytes(glb), tmp_path)["issues"]["numErrors"] > 0
