"""ONNX export with a parity check, and bundle writing with the manifest from app/bundle.py.

    python -m training export --run-dir runs/cpu --out models/gan3d-cpu

Each network is exported with a dynamic batch axis and named tensors, then run by ONNX Runtime
on fresh random inputs of a different batch size and compared with torch: the largest absolute
difference is reported and anything above PARITY_TOLERANCE fails the export.

``half_weights``: the large weight tensors are then stored as float16, each behind a Cast to
float32 that ONNX Runtime folds away when it loads the session, so the file is half the size
and inference still runs in float32 at the same speed. Only the weights are rounded; parity
is checked again against torch with HALF_PARITY_TOLERANCE. (Hand-written: onnxconverter-common's
float16 conversion also moves the computation to float16, which CPU kernels lack or run slowly.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from app.bundle import OnnxSignature, TensorSpec
from training.models.gradient import GeneratorGradientExport
from training.models.prototypes import answer_logits, has_prototypes
from training.models.segmenter import SegmenterExport

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
HALF_PARITY_TOLERANCE = 1e-2  # float16 weights: ~1e-3 relative rounding of every weight
HALF_MIN_ELEMENTS = 1024  # smaller tensors (biases, BatchNorm) stay float32
OPSET = 17


class ExportParityError(RuntimeError):
    pass


class GeneratorExport(nn.Module):
    """z [batch, Z] -> voxels [batch, 1, R, R, R] occupancy probabilities."""

    def __init__(self, g: nn.Module) -> None:
        super().__init__()
        self.g = g

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.g.probabilities(z)


class PrototypeEncoderExport(nn.Module):
    """image [batch, 3, S, S] -> mu, logvar [batch, Z] (the blend of every prototype) and the
    prototype logits [batch, K], so the service can blend within one category (app/
    prototypes.py); the logits are the image's and its mirror image's, averaged
    (training/models/prototypes.py: answer_logits)."""

    def __init__(self, e: nn.Module) -> None:
        super().__init__()
        self.e = e

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = answer_logits(self.e, x)  # the image's and its mirror image's, averaged
        mu, logvar = self.e.proto.blend(logits)
        return mu, logvar, logits


def _signature(inputs: dict[str, list], outputs: dict[str, list]) -> OnnxSignature:
    return OnnxSignature(
        inputs=[TensorSpec(name=n, shape=s) for n, s in inputs.items()],
        outputs=[TensorSpec(name=n, shape=s) for n, s in outputs.items()],
    )


def _example(inputs: dict[str, list], batch: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.randn([batch if d == "batch" else d for d in shape], generator=gen)
        for shape in inputs.values()
    )


def store_half(path: Path) -> int:
    """Rewrite ``path`` with its float32 initializers of >= HALF_MIN_ELEMENTS values stored as
    float16 behind a Cast node; -> how many were converted."""
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = onnx.numpy_helper.to_array(init)
        if values.size < HALF_MIN_ELEMENTS:
            continue
        half = onnx.numpy_helper.from_array(values.astype(np.float16), f"{init.name}__f16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(
            onnx.helper.make_node(
                "Cast",
                [half.name],
                [init.name],
                to=onnx.TensorProto.FLOAT,
                name=f"{half.name}_cast",
            )
        )
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return len(casts)


def check_parity(
    module: nn.Module,
    path: Path,
    *,
    inputs: dict[str, list],
    outputs: dict[str, list],
    seed: int = 1,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """Run ``path`` with ONNX Runtime and ``module`` with torch on the same fresh random inputs
    (batch 3); -> max abs difference; raises ExportParityError above ``tolerance``."""
    module.eval()
    fresh = _example(inputs, 3, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = module(*fresh)
    ref = ref if isinstance(ref, tuple) else (ref,)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(list(outputs), {n: t.numpy() for n, t in zip(inputs, fresh, strict=True)})
    err = max(float(np.max(np.abs(g - r.numpy()))) for g, r in zip(got, ref, strict=True))
    log.info("%s: max abs error vs torch %.2e", path.name, err)
    if not err <= tolerance:
        raise ExportParityError(
            f"{path.name}: ONNX Runtime differs from torch by {err:.3e} (> {tolerance})"
        )
    return err


def export_onnx(
    module: nn.Module,
    path: Path,
    *,
    inputs: dict[str, list],
    outputs: dict[str, list],
    half_weights: bool = False,
) -> tuple[OnnxSignature, float]:
    """Export ``module`` (eval mode) to ``path``; shapes use "batch" for the dynamic axis.
    Returns the signature and the parity error against torch (see check_parity) of the file
    as written (after ``store_half`` when ``half_weights``)."""
    module.eval()
    dynamic = {n: {0: "batch"} for n in [*inputs, *outputs]}
    with torch.no_grad():
        torch.onnx.export(
            module, _example(inputs, 2, torch.Generator().manual_seed(0)), str(path),
            input_names=list(inputs), output_names=list(outputs), dynamic_axes=dynamic,
            opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    module.eval()  # the exporter restores the caller's mode recursively; keep BatchNorm frozen
    err = check_parity(module, path, inputs=inputs, outputs=outputs)
    if half_weights:
        store_half(path)
        err = check_parity(
            module, path, inputs=inputs, outputs=outputs, tolerance=HALF_PARITY_TOLERANCE
        )
    return _signature(inputs, outputs), err


def export_networks(
    nets: dict[str, nn.Module], cfg, out: Path, *, half_weights: bool = False
) -> dict[str, tuple]:
    """G, E, V (and S, a segmenter) of a trained model -> {role: (file, signature, max error)}."""
    m = cfg.model
    z, r, s = m.z_dim, m.resolution, m.image_size
    latent = {"mu": ["batch", z], "logvar": ["batch", z]}
    e, e_out = nets["E"], latent
    if has_prototypes(e):
        e, e_out = PrototypeEncoderExport(e), {**latent, "logits": ["batch", len(e.proto.bank)]}
    plan = {
        "generator": ("generator.onnx", GeneratorExport(nets["G"]), {"z": ["batch", z]},
                      {"voxels": ["batch", 1, r, r, r]}),
        "image_encoder": ("image_encoder.onnx", e, {"image": ["batch", 3, s, s]}, e_out),
        "voxel_encoder": ("voxel_encoder.onnx", nets["V"], {"voxels": ["batch", 1, r, r, r]},
                          latent),
        "generator_gradient": ("generator_gradient.onnx", GeneratorGradientExport(nets["G"]),
                               {"z": ["batch", z], "target": ["batch", r, r, r]},
                               {"gradient": ["batch", z], "loss": ["batch"]}),
    }  # fmt: skip
    if "S" in nets:  # the run's object cut-out network (training/engine/segmenter.py)
        image, mask = {"image": ["batch", 3, s, s]}, {"object": ["batch", 1, s, s]}
        plan["segmenter"] = ("segmenter.onnx", SegmenterExport(nets["S"]), image, mask)
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for role, (name, module, ins, outs) in plan.items():
        sig, err = export_onnx(
            module, out / name, inputs=ins, outputs=outs, half_weights=half_weights
        )
        done[role] = (name, sig, err)
    return done
