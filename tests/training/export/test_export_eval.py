"""Export parity, metric functions on constructed cases, concepts, and a whole tiny bundle."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from app.bundle import verify
from training.data.shapes import CATEGORY_NAMES
from training.engine.config import PRESETS
from training.evaluation.common import generation_metrics, iou, pairwise_iou
from training.evaluation.latent_space import concept_vectors
from training.export.onnx import (
    HALF_PARITY_TOLERANCE,
    ExportParityError,
    GeneratorExport,
    check_parity,
    export_onnx,
)
from training.models.gradient import FIT_POS_WEIGHT, GeneratorGradientExport
from training.models.judge import BINARY
from training.models.networks import build

Z, R = PRESETS["tiny"].model.z_dim, PRESETS["tiny"].model.resolution
G_IO = {"inputs": {"z": ["batch", Z]}, "outputs": {"voxels": ["batch", 1, R, R, R]}}


def test_export_parity_passes_and_a_perturbed_graph_fails(tmp_path: Path) -> None:
    g = GeneratorExport(build(PRESETS["tiny"].model, seed=0)["G"])
    path = tmp_path / "g.onnx"
    sig, err = export_onnx(g, path, **G_IO)
    assert err < 1e-4 and [t.name for t in sig.inputs] == ["z"]
    model = onnx.load(str(path))
    w = model.graph.initializer[0]
    arr = numpy_helper.to_array(w).copy()
    arr += 0.05  # a small change to one weight tensor
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    onnx.save(model, str(path))
    with pytest.raises(ExportParityError, match="differs from torch"):
        check_parity(g, path, **G_IO)


def test_half_weights_halve_the_file_and_keep_float32_compute(tmp_path: Path) -> None:
    g = GeneratorExport(build(PRESETS["tiny"].model, seed=0)["G"])
    full, half = tmp_path / "full.onnx", tmp_path / "half.onnx"
    export_onnx(g, full, **G_IO)
    _, err = export_onnx(g, half, **G_IO, half_weights=True)
    assert 0 < err <= HALF_PARITY_TOLERANCE  # rounded weights, checked against torch
    model = onnx.load(str(half))
    big = [i for i in model.graph.initializer if numpy_helper.to_array(i).size >= 1024]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    # inputs and outputs stay float32: the service's contract does not change
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert half.stat().st_size < 0.7 * full.stat().st_size


def test_exported_graph_has_a_dynamic_batch(tmp_path: Path) -> None:
    import onnxruntime as ort

    path = tmp_path / "g.onnx"
    export_onnx(GeneratorExport(build(PRESETS["tiny"].model)["G"]), path, **G_IO)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in (1, 5):
        (out,) = sess.run(None, {"z": np.zeros((b, Z), np.float32)})
        assert out.shape == (b, 1, R, R, R) and out.min() >= 0 and out.max() <= 1


def _grids(n: int, seed: int, offset: int = 0) -> np.ndarray:
    """n distinct random boxes in a 16^3 grid, shifted by ``offset`` voxels along x."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 16, 16, 16), dtype=bool)
    for i in range(n):
        lo = rng.integers(0, 4, 3)
        hi = lo + rng.integers(2, 5, 3)
        out[i, lo[0] + offset : hi[0] + offset, lo[1] : hi[1], lo[2] : hi[2]] = True
    return out


def test_iou_known_answers() -> None:
    a = np.zeros((1, 4, 4, 4), bool)
    b = a.copy()
    a[0, :2] = True
    b[0, 1:3] = True
    assert iou(a, b)[0] == pytest.approx(1 / 3)
    assert iou(a, a)[0] == 1.0
    assert pairwise_iou(a, b)[0, 0] == pytest.approx(1 / 3)


def test_generation_metrics_identical_and_disjoint_sets() -> None:
    refs = _grids(20, 0)
    same = generation_metrics(refs.copy(), refs)
    assert same["mmd"] == pytest.approx(0.0) and same["cov"] == 1.0
    assert same["one_nna"] == pytest.approx(0.0)  # every sample's twin is a reference: memorised
    far = generation_metrics(_grids(20, 1, offset=9), refs)  # no overlap with any reference
    assert far["mmd"] == pytest.approx(1.0) and far["one_nna"] == pytest.approx(1.0)
    assert far["cov"] <= 0.5


def test_concept_vectors_exemplars_means_and_directions() -> None:
    mu = np.array([[1.0, 0], [3.0, 0], [2.2, 0], [0, 1.0], [0, 3.0]])
    cats = np.array([0, 0, 0, 2, 2])  # chair, chair, chair, sofa, sofa
    attrs = np.full((5, len(BINARY)), np.nan)
    arm = BINARY.index("has_armrests")
    attrs[:, arm] = [1, 0, 0, 1, 0]
    c = concept_vectors(mu, cats, attrs)
    # a category: the train code nearest its mean (chair mean 2.07 -> the code at 2.2)
    assert np.allclose(c["chair"], [2.2, 0]) and np.allclose(c["sofa"], [0, 1])
    assert np.allclose(c["chair.has_armrests=1"], [1, 0])
    assert np.allclose(c["chair.has_armrests=0"], [2.6, 0])  # sub-concepts stay means
    assert np.allclose(c["has_armrests"], [(1 - 2.6) / 2, (1 - 3) / 2])


def test_tiny_bundle_end_to_end(tmp_path: Path, tiny_data_root: Path) -> None:
    from training.engine.segmenter import train_for_run
    from training.engine.train import train
    from training.export.bundle import write_bundle

    cfg = dataclasses.replace(PRESETS["tiny"], checkpoint_every=1000)
    ckpt = train(cfg, run_dir=tmp_path / "run", data_root=tiny_data_root)
    train_for_run(ckpt, data_root=tiny_data_root, steps=4)  # the run's cut-out network
    out = tmp_path / "bundle"
    m = write_bundle(
        ckpt,
        out,
        name="tiny-e2e",
        version="0.0.1",
        data_root=tiny_data_root,
        judge_steps=10,
        preview_size=32,
        commands=["python -m training train --preset {preset}"],
    )
    v = verify(out)
    assert v.files == m.files and v.name == m.name == "tiny-e2e"
    roles = {f.role for f in m.files}
    assert {
        "generator",
        "image_encoder",
        "voxel_encoder",
        "generator_gradient",
        "segmenter",
        "concepts",
        "directions",
        "metrics",
        "model_card",
        "preview",
    } <= roles
    import json

    directions = json.loads((out / "directions.json").read_text())["directions"]
    assert directions and all(len(d["vector"]) == Z for d in directions)
    assert "## Edit directions" in (out / "MODEL_CARD.md").read_text()
    card = (out / "MODEL_CARD.md").read_text()
    assert "python -m training train --preset tiny" in card and "| metric | target |" in card
    assert "object cut-out network" in card
    concepts = np.load(out / "concepts.npz")
    assert "chair" in concepts and concepts["chair"].shape == (Z,)
    assert m.metrics["reconstruction_iou_mean"] >= 0
    full = json.loads((out / "metrics.json").read_text())
    walks = full["interpolation"]["concept_walks"]
    n = len(CATEGORY_NAMES)  # a walk between every two category concepts, 8 frames each
    assert walks["walks"] == n * (n - 1) // 2 and walks["inner_frames"] == 6
    assert 0 <= walks["single_piece_after_cleanup"] <= 1 and 0 <= walks["judged_an_endpoint"] <= 1


def test_image_encoder_with_a_prototype_head_exports_with_parity(tmp_path: Path) -> None:
    model = dataclasses.replace(PRESETS["tiny"].model, e_prototypes=6)
    e = build(model, seed=0)["E"]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        e.proto.weight.normal_(0, 0.5, generator=gen)
        e.proto.bank.normal_(0, 1, generator=gen)
        e.proto.ready.fill_(1)
    s = model.image_size
    io = {
        "inputs": {"image": ["batch", 3, s, s]},
        "outputs": {"mu": ["batch", model.z_dim], "logvar": ["batch", model.z_dim]},
    }
    for half in (False, True):
        _, err = export_onnx(e, tmp_path / f"e{half}.onnx", **io, half_weights=half)
        assert err <= (HALF_PARITY_TOLERANCE if half else 1e-4)


def test_generator_gradient_is_autograds_and_exports_with_parity(tmp_path: Path) -> None:
    """The hand-written backward pass equals torch's autograd on a trained-like G (BatchNorm with
    non-trivial running statistics), in torch and as the exported ONNX graph."""
    model = PRESETS["tiny"].model
    g = build(model, seed=0)["G"]
    g.train()
    with torch.no_grad():  # running statistics away from (0, 1), as after training
        for _ in range(3):
            g(torch.randn(16, model.z_dim) * 2)
    g.eval()
    r, zd = model.resolution, model.z_dim
    z = torch.randn(4, zd, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = (torch.rand(4, r, r, r, generator=torch.Generator().manual_seed(2)) > 0.7).float()
    logits = g(z)[:, 0]
    want = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=torch.tensor(FIT_POS_WEIGHT), reduction="none"
        )
        .flatten(1)
        .mean(1)
    )
    want.sum().backward()
    module = GeneratorGradientExport(g).eval()
    grad, loss = module(z.detach(), target)
    assert torch.allclose(loss, want.detach(), atol=1e-6)
    assert torch.allclose(grad, z.grad, atol=1e-6 * float(z.grad.abs().max()) + 1e-9)
    assert float(z.grad.abs().max()) > 0  # a real gradient, not a vacuous comparison
    io = {
        "inputs": {"z": ["batch", zd], "target": ["batch", r, r, r]},
        "outputs": {"gradient": ["batch", zd], "loss": ["batch"]},
    }
    _, err = export_onnx(module, tmp_path / "grad.onnx", **io)
    assert err <= 1e-4
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "grad.onnx"), providers=["CPUExecutionProvider"])
    got, got_loss = sess.run(None, {"z": z.detach().numpy(), "target": target.numpy()})
    assert np.allclose(got, z.grad.numpy(), atol=1e-5) and np.allclose(got_loss, want.detach())


def test_directions_fit_the_labels_they_are_named_after() -> None:
    from training.data.procedural import attribute_names
    from training.data.shapes import CATEGORY_NAMES
    from training.export.directions import fit_directions

    names = attribute_names()
    rng = np.random.default_rng(0)
    n, z = 80, 6
    cats = np.full(n, CATEGORY_NAMES.index("chair"))
    attrs = np.full((n, len(names)), np.nan, np.float32)
    arms = (np.arange(n) % 2).astype(np.float32)  # half with armrests
    seat = rng.uniform(0.3, 0.6, n).astype(np.float32)
    attrs[:, names.index("has_armrests")] = arms
    attrs[:, names.index("seat_height")] = seat
    mu = rng.normal(0, 0.1, (n, z)).astype(np.float32)
    mu[:, 0] += 2 * arms  # armrests live on axis 0, seat height on axis 1
    mu[:, 1] += 10 * seat
    found = {d.name: d for d in fit_directions(mu, cats, attrs, names)}
    arms_dir, seat_dir = found["chair.has_armrests"], found["chair.seat_height"]
    assert arms_dir.kind == "binary" and np.argmax(np.abs(arms_dir.vector)) == 0
    assert abs(arms_dir.vector[0] - 2) < 0.2
    assert seat_dir.kind == "continuous" and np.argmax(np.abs(seat_dir.vector)) == 1
    assert {"chair.pc1", "chair.pc2"} <= set(found) and "sofa.has_armrests" not in found


def test_sefa_finds_what_the_first_layer_amplifies_and_directions_carry_it() -> None:
    from training.data.procedural import attribute_names
    from training.export.directions import fit_directions, sefa

    z, c = 5, 3
    w = np.zeros((z, c, 2, 2, 2), np.float32)
    w[3, 0] = 4.0  # latent axis 3 drives channel 0 hardest ...
    w[1, 1] = 2.0  # ... then axis 1, on a channel that BatchNorm halves
    w[0, 2] = 1.5
    basis = sefa(w, np.array([1.0, 0.5, 1.0], np.float32), 2)
    assert basis.shape == (2, z)
    assert np.allclose(np.abs(basis), np.eye(z)[[3, 0]], atol=1e-6)  # 1.5 > 2 * 0.5
    names = attribute_names()
    mu = np.random.default_rng(0).normal(0, 1, (40, z)).astype(np.float32)
    mu[:, 3] *= 4
    cats = np.zeros(40, int)
    attrs = np.full((40, len(names)), np.nan, np.float32)
    found = {d.name: d for d in fit_directions(mu, cats, attrs, names, sefa_basis=basis)}
    first = found["any.sefa1"]
    assert first.category == "any" and first.kind == "discovered"
    assert abs(np.linalg.norm(first.vector) - mu[:, 3].std()) < 1e-3  # 1 = one std of codes
