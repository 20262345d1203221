"""Write a bundle's ONNX networks as an NVIDIA Triton Inference Server model repository.

    python -m training triton --bundle models/gan3d-cpu --out triton_models

    triton_models/gan3d_generator/config.pbtxt + 1/model.onnx    (likewise every ONNX role)

Each config has dynamic batching (preferred sizes, a short queue delay), a bounded queue that
rejects past its size or timeout, and a zero-input warm-up, so Triton serves the same ONNX files
the gan3d app does. The text is checked against Triton's own protobuf schema in the tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.bundle import Manifest, verify

MAX_BATCH = 32
QUEUE_DELAY_US = 5_000
MAX_QUEUE = 256
TIMEOUT_US = 30_000_000


def _tensor(name: str, shape: list) -> str:
    dims = ", ".join(str(d) for d in shape[1:])  # Triton's dims exclude the batch axis
    # one value per row (a loss): Triton wants [1], reshaped to the row's scalar
    reshape = "" if dims else "    reshape: { shape: [ ] }\n"
    return (
        f'  {{\n    name: "{name}"\n    data_type: TYPE_FP32\n    dims: [ {dims or 1} ]\n'
        f"{reshape}  }}"
    )


def _warmup_input(t) -> str:
    dims = ", ".join(str(d) for d in t.shape[1:])
    return (
        f'    inputs {{\n      key: "{t.name}"\n      value {{\n        data_type: TYPE_FP32\n'
        f"        dims: [ {dims} ]\n        zero_data: true\n      }}\n    }}"
    )


def config_text(model_name: str, entry, max_batch: int = MAX_BATCH) -> str:
    sig = entry.onnx
    warm = "\n".join(_warmup_input(t) for t in sig.inputs)
    preferred = ", ".join(str(b) for b in (4, 8, 16, 32) if b <= max_batch)
    inputs = ",\n".join(_tensor(t.name, t.shape) for t in sig.inputs)
    outputs = ",\n".join(_tensor(t.name, t.shape) for t in sig.outputs)
    return f"""name: "{model_name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
input [
{inputs}
]
output [
{outputs}
]
dynamic_batching {{
  preferred_batch_size: [ {preferred} ]
  max_queue_delay_microseconds: {QUEUE_DELAY_US}
  default_queue_policy {{
    timeout_action: REJECT
    default_timeout_microseconds: {TIMEOUT_US}
    allow_timeout_override: true
    max_queue_size: {MAX_QUEUE}
  }}
}}
instance_group [
  {{
    count: 1
    kind: KIND_AUTO
  }}
]
model_warmup [
  {{
    name: "zeros"
    batch_size: 1
{warm}
  }}
]
"""


def write_repository(bundle_dir: Path, out: Path, *, prefix: str = "gan3d") -> list[Path]:
    """-> the config files written. The bundle is verified first."""
    manifest: Manifest = verify(bundle_dir)
    written = []
    for entry in manifest.files:
        if entry.onnx is None:
            continue
        name = f"{prefix}_{entry.role}"
        model_dir = Path(out) / name
        (model_dir / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(bundle_dir) / entry.path, model_dir / "1" / "model.onnx")
        cfg = model_dir / "config.pbtxt"
        cfg.write_text(config_text(name, entry))
        written.append(cfg)
    return written
