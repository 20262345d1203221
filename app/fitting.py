"""Fitting a latent to an uploaded shape (/v1/encode's refinement): gradient steps, or the
older fixed-point rule for bundles without the gradient graph.

The voxel encoder's code is a one-shot guess: on real test meshes its decoded shape matches the
upload at IoU 0.68, while the same generator can reach 0.85 from a code fitted by gradient
descent (real validation models, 300 steps). So when the bundle has a ``generator_gradient``
graph (the gradient of the generator's reconstruction loss with respect to z, exported by
training/export/onnx.py), /v1/encode starts from the encoder's code and takes Adam steps on it.

Adam (Kingma & Ba, 2015), not plain gradient steps: the loss's gradient differs in scale from
shape to shape and coordinate to coordinate. Written here in numpy (a few lines): the service
runs no torch, and no maintained numpy optimiser is worth a dependency for one update rule.
The evaluation (training/evaluation/real.py) fits with this same class, so the README's figure is
the service's.
"""

from __future__ import annotations

import numpy as np

FIT_RATE = 0.1  # Adam's step size, chosen on the real validation models (docs/api.md, Fitting)
DEFAULT_FIT_STEPS = 40
MAX_FIT_STEPS = 200
# fixed-point refinement, for bundles without a generator_gradient graph
DEFAULT_FIXED_POINT_STEPS = 3
MAX_FIXED_POINT_STEPS = 8
FIXED_POINT_RATE = 0.5


def fixed_point_step(z: np.ndarray, code: np.ndarray, again: np.ndarray) -> np.ndarray:
    """z <- z + FIXED_POINT_RATE * (V(upload) - V(G(z))): the decoded shape's code moves to
    the upload's. z, code (the upload's code), again (the code of z's decoded shape): [N, Z]."""
    return z + FIXED_POINT_RATE * (code - again)


class Adam:
    """Adam on rows of latents [N, Z], each row its own problem (the moments are per entry)."""

    def __init__(
        self, rate: float = FIT_RATE, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.rate, self.beta1, self.beta2, self.eps = rate, beta1, beta2, eps
        self.t = 0
        self.m: np.ndarray | float = 0.0
        self.v: np.ndarray | float = 0.0

    def step(self, z: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """-> the next z, one step against ``grad``."""
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return (z - self.rate * m_hat / (np.sqrt(v_hat) + self.eps)).astype(np.float32)
