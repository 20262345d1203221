"""Training: the staged loop, checkpoints, prototype, attribute and segmenter training."""
