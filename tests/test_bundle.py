"""The bundle contract: a good bundle verifies; each kind of damage names file and problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.bundle import (
    ChecksumError,
    ManifestError,
    MissingFileError,
    SignatureError,
    file_entry,
    load_manifest,
    verify,
    write_manifest,
)
from tests.tiny_bundle import generator_onnx


def test_tiny_bundle_verifies(tiny_bundle: Path) -> None:
    m = verify(tiny_bundle)
    assert m.latent.size == 8 and m.voxel_resolution == 8
    roles = {"generator", "image_encoder", "voxel_encoder", "concepts", "directions"}
    assert {f.role for f in m.files} == roles


def test_flipped_byte_fails_checksum(tiny_bundle: Path) -> None:
    p = tiny_bundle / "voxel_encoder.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as e:
        verify(tiny_bundle)
    assert e.value.file == "voxel_encoder.onnx"
    assert "sha256" in str(e.value)


def test_missing_file_fails(tiny_bundle: Path) -> None:
    (tiny_bundle / "concepts.npz").unlink()
    with pytest.raises(MissingFileError) as e:
        verify(tiny_bundle)
    assert e.value.file == "concepts.npz"
    assert "missing" in str(e.value)


def test_missing_manifest_fails(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as e:
        verify(tmp_path)
    assert e.value.file == "manifest.json"


def _replace_generator(bundle: Path, **kwargs: object) -> None:
    """Write a different generator.onnx and re-pin its sha256, keeping the declared signature."""
    m = load_manifest(bundle)
    generator_onnx(bundle / "generator.onnx", **kwargs)  # type: ignore[arg-type]
    old = m.file("generator")
    new = file_entry(bundle, "generator.onnx", "generator", old.onnx)
    files = [new if f.role == "generator" else f for f in m.files]
    write_manifest(bundle, m.model_copy(update={"files": files}))


def test_wrong_tensor_name_fails(tiny_bundle: Path) -> None:
    _replace_generator(tiny_bundle, z=8, r=8, out_name="occupancy")
    with pytest.raises(SignatureError) as e:
        verify(tiny_bundle)
    assert e.value.file == "generator.onnx"
    assert "occupancy" in str(e.value) and "voxels" in str(e.value)


def test_wrong_tensor_shape_fails(tiny_bundle: Path) -> None:
    _replace_generator(tiny_bundle, z=8, r=4)
    with pytest.raises(SignatureError) as e:
        verify(tiny_bundle)
    assert e.value.file == "generator.onnx"
    assert "shape" in str(e.value)


def test_declared_shape_must_match_latent_and_resolution(tiny_bundle: Path) -> None:
    raw = json.loads((tiny_bundle / "manifest.json").read_text())
    raw["voxel_resolution"] = 16
    (tiny_bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(SignatureError) as e:
        verify(tiny_bundle)
    assert e.value.file == "generator.onnx"
    assert "resolution 16" in str(e.value)


def test_bad_manifest_schema_fails(tiny_bundle: Path) -> None:
    raw = json.loads((tiny_bundle / "manifest.json").read_text())
    raw["files"] = [f for f in raw["files"] if f["role"] != "generator"]
    (tiny_bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError) as e:
        verify(tiny_bundle)
    assert e.value.file == "manifest.json"
    assert "generator" in str(e.value)


def test_path_escaping_bundle_is_rejected(tiny_bundle: Path) -> None:
    raw = json.loads((tiny_bundle / "manifest.json").read_text())
    raw["files"][-1]["path"] = "../secrets.npz"
    (tiny_bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="inside the bundle"):
        verify(tiny_bundle)


def test_not_json_manifest(tiny_bundle: Path) -> None:
    (tiny_bundle / "manifest.json").write_text("{nope")
    with pytest.raises(ManifestError, match="not valid JSON"):
        verify(tiny_bundle)


def test_a_prototype_encoder_declares_its_logits_and_ships_the_codes(tmp_path: Path) -> None:
    from tests.tiny_bundle import make_tiny_bundle

    bundle = tmp_path / "b"
    make_tiny_bundle(bundle, prototypes=6)
    m = verify(bundle)
    assert m.image.prototypes == 6 and m.file("prototypes") is not None
    # the manifest's K must be the encoder's third output
    raw = json.loads((bundle / "manifest.json").read_text())
    raw["image"]["prototypes"] = 7
    (bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(SignatureError, match=r"image_encoder\.onnx"):
        verify(bundle)
    # and K without the file of codes is refused
    raw["image"]["prototypes"] = 6
    raw["files"] = [f for f in raw["files"] if f["role"] != "prototypes"]
    (bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="prototypes"):
        verify(bundle)
