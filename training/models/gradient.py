"""The generator's reconstruction-loss gradient with respect to z, as a plain forward graph:
exported as generator_gradient.onnx for /v1/encode's fitting, and used by the evaluation to
fit latents as the service does."""

from __future__ import annotations

import torch
from torch import nn

FIT_POS_WEIGHT = 3.0  # the weighted BCE's positive weight, as training's reconstruction loss


class GeneratorGradientExport(nn.Module):
    """(z [batch, Z], target [batch, R, R, R] occupancy) -> (gradient [batch, Z], loss [batch]):
    each shape's loss is the mean weighted binary cross-entropy (positive weight FIT_POS_WEIGHT,
    as training's reconstruction loss) of G(z)'s logits against its target, and the gradient is
    that loss's with respect to its own z, for /v1/encode's fitting (app/fitting.py).

    Hand-written backward pass: ONNX has no automatic differentiation (onnxruntime-training
    builds gradient graphs, but as a separate, training-only runtime), and G is a plain chain.
    A transposed convolution's gradient with respect to its input is the convolution with the
    same weights, stride and padding; BatchNorm in eval mode scales each channel by
    weight / sqrt(running_var + eps); ReLU passes the gradient where its input is positive.
    tests/training/test_export.py checks it against torch's autograd."""

    def __init__(self, g: nn.Module, pos_weight: float = FIT_POS_WEIGHT) -> None:
        super().__init__()
        layers = list(g.net)
        self.blocks = [(layers[i], layers[i + 1]) for i in range(0, len(layers) - 1, 3)]
        self.last = layers[-1]
        self.g = g  # registers the weights
        self.pos_weight = pos_weight

    def forward(self, z: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, masks = z[:, :, None, None, None], []
        for conv, bn in self.blocks:
            a = bn(conv(h))
            masks.append(a > 0)
            h = torch.relu(a)
        logits = self.last(h)[:, 0]
        w, y = self.pos_weight, target
        per_voxel = w * y * nn.functional.softplus(-logits) + (1 - y) * nn.functional.softplus(
            logits
        )
        loss = per_voxel.flatten(1).mean(1)
        p = torch.sigmoid(logits)
        grad = ((1 - y) * p - w * y * (1 - p)) / logits[0].numel()
        grad = nn.functional.conv3d(
            grad[:, None], self.last.weight, stride=self.last.stride, padding=self.last.padding
        )
        for (conv, bn), mask in zip(reversed(self.blocks), reversed(masks), strict=True):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            grad = grad * mask * scale[None, :, None, None, None]
            grad = nn.functional.conv3d(grad, conv.weight, stride=conv.stride, padding=conv.padding)
        return grad.flatten(1), loss
