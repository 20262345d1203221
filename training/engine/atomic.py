"""torch.save that never leaves a half-written file: written beside, then renamed over."""

from __future__ import annotations

from pathlib import Path

import torch


def save_atomic(obj: object, path: Path) -> Path:
    """torch.save ``obj`` to ``path``: a crash mid-save leaves the previous file, not a broken
    one (the rename is atomic on one filesystem)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path
