"""Triton model repository: every config parses with Triton's own protobuf schema."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.tiny_bundle import make_tiny_bundle
from training.export.triton import write_repository


def test_repository_configs_parse_and_match_the_onnx_files(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    make_tiny_bundle(bundle, gradient=True)
    configs = write_repository(bundle, tmp_path / "repo")
    assert {c.parent.name for c in configs} == {
        "gan3d_generator",
        "gan3d_image_encoder",
        "gan3d_voxel_encoder",
        "gan3d_generator_gradient",
    }
    for path in configs:
        cfg = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        assert cfg.name == path.parent.name and cfg.platform == "onnxruntime_onnx"
        assert cfg.max_batch_size == 32
        assert cfg.dynamic_batching.default_queue_policy.max_queue_size == 256
        assert cfg.dynamic_batching.default_queue_policy.timeout_action == (
            model_config_pb2.ModelQueuePolicy.REJECT
        )
        assert all(cfg.model_warmup[0].inputs[t.name].zero_data for t in cfg.input)
        sess = ort.InferenceSession(
            str(path.parent / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        onnx_in = {i.name: i.shape[1:] for i in sess.get_inputs()}
        onnx_out = {o.name: o.shape[1:] for o in sess.get_outputs()}
        assert {t.name: list(t.dims) for t in cfg.input} == onnx_in
        # a value per row (the gradient graph's loss) is [1] reshaped to a scalar in Triton
        assert {t.name: list(t.reshape.shape) if t.HasField("reshape") else list(t.dims)
                for t in cfg.output} == onnx_out  # fmt: skip


def test_a_typo_would_not_parse(tiny_bundle: Path, tmp_path: Path) -> None:
    path = write_repository(tiny_bundle, tmp_path / "repo")[0]
    with pytest.raises(text_format.ParseError):
        text_format.Parse(
            path.read_text().replace("max_queue_size", "max_queue_sise"),
            model_config_pb2.ModelConfig(),
        )
