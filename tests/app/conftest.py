from __future__ import annotations

from pathlib import Path

from app.settings import Settings


def tiny_settings(bundle: Path, **overrides: object) -> Settings:
    """Service settings for a test bundle: CPU provider, one ONNX Runtime thread."""
    return Settings(
        bundle_dir=bundle, providers=["CPUExecutionProvider"], intra_op_threads=1, **overrides
    )
