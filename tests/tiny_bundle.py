"""Small valid bundles for tests, built with onnx.helper (random weights: fixtures only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.bundle import (
    ImageSpec,
    LatentSpec,
    Manifest,
    OnnxSignature,
    TensorSpec,
    file_entry,
    write_manifest,
)


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def generator_onnx(path: Path, *, z: int, r: int, seed: int = 0, out_name: str = "voxels") -> None:
    """z [batch, z] -> sigmoid(z @ W) reshaped to [batch, 1, r, r, r]."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(z, r**3)).astype(np.float32), "W")
    shape = numpy_helper.from_array(np.array([-1, 1, r, r, r], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["z", "W"], ["h"]),
        helper.make_node("Sigmoid", ["h"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], [out_name]),
    ]
    graph = helper.make_graph(
        nodes,
        "generator",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", z])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", 1, r, r, r])],
        initializer=[w, shape],
    )
    _save(graph, path)


def generator_gradient_onnx(
    path: Path, *, z: int, r: int, seed: int = 0, pos_weight: float = 3.0
) -> None:
    """The exact gradient graph of :func:`generator_onnx`'s generator (same seed, same W):
    (z [batch, z], target [batch, r, r, r]) -> (gradient [batch, z], loss [batch]) of the mean
    weighted binary cross-entropy of its logits h = z @ W against the target."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(z, r**3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(w.T.copy(), "WT"),
        numpy_helper.from_array(np.array([-1, r**3], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array(pos_weight, np.float32), "pw"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(1.0 / r**3, np.float32), "inv_n"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    n = helper.make_node
    nodes = [
        n("MatMul", ["z", "W"], ["h"]),
        n("Sigmoid", ["h"], ["p"]),
        n("Reshape", ["target", "flat"], ["y"]),
        n("Sub", ["one", "y"], ["not_y"]),
        n("Mul", ["pw", "y"], ["wy"]),
        n("Sub", ["one", "p"], ["not_p"]),
        n("Mul", ["not_y", "p"], ["a"]),
        n("Mul", ["wy", "not_p"], ["b"]),
        n("Sub", ["a", "b"], ["d"]),
        n("Mul", ["d", "inv_n"], ["dh"]),
        n("MatMul", ["dh", "WT"], ["gradient"]),
        n("Neg", ["h"], ["neg_h"]),
        n("Softplus", ["neg_h"], ["sp_neg"]),
        n("Softplus", ["h"], ["sp"]),
        n("Mul", ["wy", "sp_neg"], ["l1"]),
        n("Mul", ["not_y", "sp"], ["l2"]),
        n("Add", ["l1", "l2"], ["l"]),
        n("ReduceMean", ["l", "axis1"], ["loss"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "generator_gradient",
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", z]),
            helper.make_tensor_value_info("target", TensorProto.FLOAT, ["batch", r, r, r]),
        ],
        [
            helper.make_tensor_value_info("gradient", TensorProto.FLOAT, ["batch", z]),
            helper.make_tensor_value_info("loss", TensorProto.FLOAT, ["batch"]),
        ],
        initializer=inits,
    )
    _save(graph, path)


def encoder_onnx(
    path: Path, *, in_shape: list[int], z: int, input_name: str, seed: int = 1, logits: int = 0
) -> None:
    """x [batch, *in_shape] -> flatten -> (mu, logvar) [batch, z], and with ``logits`` K > 0
    a third output, prototype logits [batch, K] (another projection of the same input)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(in_shape))
    w = numpy_helper.from_array((rng.normal(size=(n, 2 * z)) / np.sqrt(n)).astype(np.float32), "W")
    nodes = [
        helper.make_node("Flatten", [input_name], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "W"], ["h"]),
        helper.make_node("Split", ["h"], ["mu", "logvar"], axis=1, num_outputs=2),
    ]
    outputs = [
        helper.make_tensor_value_info("mu", TensorProto.FLOAT, ["batch", z]),
        helper.make_tensor_value_info("logvar", TensorProto.FLOAT, ["batch", z]),
    ]
    inits = [w]
    if logits:
        w2 = rng.normal(size=(n, logits)).astype(np.float32)
        inits.append(numpy_helper.from_array(w2, "W2"))
        nodes.append(helper.make_node("MatMul", ["f", "W2"], ["logits"]))
        outputs.append(
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", logits])
        )
    graph = helper.make_graph(
        nodes,
        "encoder",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", *in_shape])],
        outputs,
        initializer=inits,
    )
    _save(graph, path)


def segmenter_onnx(path: Path, *, size: int) -> None:
    """image [batch, 3, size, size] -> [batch, 1, size, size]: sigmoid(20 * (red - green)), i.e.
    "the object is what is redder than it is green" (a rule to test the plumbing with)."""
    inits = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "c0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "c1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "c2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
        numpy_helper.from_array(np.array(20.0, np.float32), "gain"),
    ]
    n = helper.make_node
    nodes = [
        n("Slice", ["image", "c0", "c1", "axis"], ["red"]),
        n("Slice", ["image", "c1", "c2", "axis"], ["green"]),
        n("Sub", ["red", "green"], ["d"]),
        n("Mul", ["d", "gain"], ["h"]),
        n("Sigmoid", ["h"], ["object"]),
    ]
    graph = helper.make_graph(
        nodes,
        "segmenter",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("object", TensorProto.FLOAT, ["batch", 1, size, size])],
        initializer=inits,
    )
    _save(graph, path)


def recognizer_onnx(path: Path, *, size: int) -> None:
    """image [batch, 3, size, size] -> features [batch, 3]: the mean of each channel, i.e. the
    photo's average colour (a rule to test the plumbing with: a blue object on white is near
    the references of :func:`make_tiny_bundle`, a red one is not)."""
    inits = [numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")]
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["features"], keepdims=0)]
    graph = helper.make_graph(
        nodes,
        "recognizer",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3])],
        initializer=inits,
    )
    _save(graph, path)


# the tiny recognizer's references: the average colour of a blue object framed on white
RECOGNISED_COLOUR = (0.12, 0.23, 0.78)
PROTOTYPE_CATEGORIES = ("chair", "table")


def make_tiny_bundle(
    bundle_dir: Path,
    *,
    z: int = 8,
    r: int = 8,
    image_size: int = 16,
    prototypes: int = 0,
    gradient: bool = False,
    prior: bool = False,
    segmenter: bool = False,
    recognizer: bool = False,
) -> Manifest:
    """A complete bundle (generator, image and voxel encoders, concepts) that verifies; with
    ``prototypes`` K > 0 the image encoder also outputs K prototype logits and the bundle
    carries prototypes.npz (categories alternating chair, table); with ``gradient`` it carries
    the generator's gradient graph (/v1/encode then fits by gradient steps); with ``prior``, a
    mixture prior (one component near -3) with two real-model kernels (codes near +3); with
    ``segmenter``, a cut-out graph that takes red things for the object (:func:`segmenter_onnx`);
    with ``recognizer``, one that recognises blue objects only (:func:`recognizer_onnx`)."""
    bundle_dir.mkdir(parents=True, exist_ok=True)
    generator_onnx(bundle_dir / "generator.onnx", z=z, r=r)
    encoder_onnx(
        bundle_dir / "image_encoder.onnx",
        in_shape=[3, image_size, image_size],
        z=z,
        input_name="image",
        logits=prototypes,
    )
    encoder_onnx(bundle_dir / "voxel_encoder.onnx", in_shape=[1, r, r, r], z=z, input_name="voxels")
    rng = np.random.default_rng(2)
    np.savez(bundle_dir / "concepts.npz", chair=rng.normal(size=z).astype(np.float32))
    directions = [
        {"name": "chair.tall_back", "category": "chair", "kind": "binary", "low": -1.5,
         "high": 1.5, "meaning": "+1 gives a chair a tall back",
         "vector": rng.normal(size=z).tolist()},
        {"name": "chair.pc1", "category": "chair", "kind": "discovered", "low": -3.0,
         "high": 3.0, "meaning": "principal direction 1", "vector": rng.normal(size=z).tolist()},
        {"name": "any.sefa1", "category": "any", "kind": "discovered", "low": -3.0,
         "high": 3.0, "meaning": "the generator's direction 1",
         "vector": rng.normal(size=z).tolist()},
    ]  # fmt: skip
    (bundle_dir / "directions.json").write_text(json.dumps({"directions": directions}))

    def sig(inputs: list[tuple[str, list]], outputs: list[tuple[str, list]]) -> OnnxSignature:
        return OnnxSignature(
            inputs=[TensorSpec(name=n, shape=s) for n, s in inputs],
            outputs=[TensorSpec(name=n, shape=s) for n, s in outputs],
        )

    lat = [("mu", ["batch", z]), ("logvar", ["batch", z])]
    image_out = lat + ([("logits", ["batch", prototypes])] if prototypes else [])
    files = [
        file_entry(
            bundle_dir,
            "generator.onnx",
            "generator",
            sig([("z", ["batch", z])], [("voxels", ["batch", 1, r, r, r])]),
        ),
        file_entry(
            bundle_dir,
            "image_encoder.onnx",
            "image_encoder",
            sig([("image", ["batch", 3, image_size, image_size])], image_out),
        ),
        file_entry(
            bundle_dir,
            "voxel_encoder.onnx",
            "voxel_encoder",
            sig([("voxels", ["batch", 1, r, r, r])], lat),
        ),
        file_entry(bundle_dir, "concepts.npz", "concepts"),
        file_entry(bundle_dir, "directions.json", "directions"),
    ]
    if gradient:
        generator_gradient_onnx(bundle_dir / "generator_gradient.onnx", z=z, r=r)
        files.append(
            file_entry(
                bundle_dir,
                "generator_gradient.onnx",
                "generator_gradient",
                sig(
                    [("z", ["batch", z]), ("target", ["batch", r, r, r])],
                    [("gradient", ["batch", z]), ("loss", ["batch"])],
                ),
            )
        )
    if segmenter:
        segmenter_onnx(bundle_dir / "segmenter.onnx", size=image_size)
        shape = ["batch", 3, image_size, image_size]
        files.append(
            file_entry(
                bundle_dir,
                "segmenter.onnx",
                "segmenter",
                sig([("image", shape)], [("object", ["batch", 1, image_size, image_size])]),
            )
        )
    if recognizer:
        recognizer_onnx(bundle_dir / "recognizer.onnx", size=image_size)
        refs = np.tile(np.array(RECOGNISED_COLOUR, np.float32), (4, 1))
        np.savez(bundle_dir / "recognition.npz", references=refs, k=2, threshold=0.9)
        shape = ["batch", 3, image_size, image_size]
        files.append(
            file_entry(
                bundle_dir,
                "recognizer.onnx",
                "recognizer",
                sig([("image", shape)], [("features", ["batch", 3])]),
            )
        )
        files.append(file_entry(bundle_dir, "recognition.npz", "recognition"))
    if prior:
        from app.latents import fit_mixture, with_kernels

        proc = np.random.default_rng(4).normal(-3, 0.1, (20, z))
        kernels = np.full((2, z), 3.0)
        kernels[1, 0] = 4.0
        mixture = fit_mixture(proc, np.zeros(20, int), ["chair|"])
        with_kernels(mixture, kernels, ["chair", "chair"], bandwidth=0.3, weight=0.5).save(
            bundle_dir / "prior.npz"
        )
        files.append(file_entry(bundle_dir, "prior.npz", "prior"))
    if prototypes:
        cats = [PROTOTYPE_CATEGORIES[i % 2] for i in range(prototypes)]
        bank = np.random.default_rng(3).normal(size=(prototypes, z)).astype(np.float32)
        np.savez(bundle_dir / "prototypes.npz", bank=bank, categories=np.array(cats))
        files.append(file_entry(bundle_dir, "prototypes.npz", "prototypes"))
    manifest = Manifest(
        name="tiny-test",
        version="0.0.0",
        latent=LatentSpec(size=z, prior="mixture" if prior else "normal"),
        voxel_resolution=r,
        image=ImageSpec(
            size=image_size,
            prototypes=prototypes or None,
            recognizer_features=3 if recognizer else None,
        ),
        categories=["chair"],
        files=files,
    )
    write_manifest(bundle_dir, manifest)
    return manifest
