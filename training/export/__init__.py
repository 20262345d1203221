"""Export: ONNX graphs with parity checks, directions, previews, model card, bundle, Triton."""
