"""3D-GAN / 3D-VAE-GAN networks, all built from one ModelConfig.

    G  generator      z [B, Z]            -> occupancy logits [B, 1, R, R, R]
                      (``probabilities(z)``: sigmoid of those, what the exported ONNX returns)
    D  discriminator  voxels [B, 1, R^3]  -> logit [B]
    E  image encoder  image [B, 3, S, S]  -> (mu, logvar) [B, Z] each
    V  voxel encoder  voxels [B, 1, R^3]  -> (mu, logvar) [B, Z] each

Wu et al. 2016: G is volumetric transposed convolutions (kernel 4, stride 2) with BatchNorm + ReLU
and a sigmoid out, from a 4^3 seed volume; D mirrors it with LeakyReLU(0.2); E has five 2D conv
layers. Call ``.eval()`` for inference so BatchNorm uses running statistics (a known failure of
re-implementations: in train mode, different z give the same shape).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    resolution: int = 64  # voxel grid side R; a power of two >= 8
    z_dim: int = 200  # latent size Z
    # G channels from the 4^3 seed volume upwards; len = log2(R / 4). Paper: 512-256-128-64.
    g_widths: tuple[int, ...] = (512, 256, 128, 64)
    # D and the voxel encoder mirror G: channels from full resolution downwards.
    d_widths: tuple[int, ...] = (64, 128, 256, 512)
    image_size: int = 64  # E input side S; a power of two >= 16
    e_widths: tuple[int, ...] = (64, 128, 256, 512)  # E: four stride-2 convs + one 4x4 conv
    # E convs per resolution level: 1 = the paper's five conv layers; 2 adds a 3x3 stride-1 conv
    # after each downsampling (a deeper E at little cost; the cpu preset's image path needs it)
    e_depth: int = 1
    # > 0: E answers with a blend of this many prototype latents (codes of training shapes, picked
    # when the first "prototype" stage starts) weighted by a classifier over them, instead of
    # regressing z; keeps image answers on the shape manifold (training/models/prototypes.py)
    e_prototypes: int = 0

    def __post_init__(self) -> None:
        steps = math.log2(self.resolution / 4)
        if steps != int(steps) or steps < 1:
            raise ValueError(
                f"resolution must be 4 * 2^k (8, 16, 32, 64, ...), got {self.resolution}"
            )
        if len(self.g_widths) != int(steps) or len(self.d_widths) != int(steps):
            raise ValueError(
                f"resolution {self.resolution} needs {int(steps)} G and D widths, "
                f"got {len(self.g_widths)} and {len(self.d_widths)}"
            )
        if self.e_prototypes < 0:
            raise ValueError(f"e_prototypes must be >= 0, got {self.e_prototypes}")
        if self.e_depth < 1:
            raise ValueError(f"e_depth must be >= 1, got {self.e_depth}")
        if self.image_size != 4 * 2 ** len(self.e_widths):
            raise ValueError(
                f"image_size {self.image_size} needs {len(self.e_widths)} = log2(S/4) E widths"
            )


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.g_widths
        layers: list[nn.Module] = [
            nn.ConvTranspose3d(cfg.z_dim, w[0], 4, 1, 0, bias=False),  # 1^3 -> 4^3
            nn.BatchNorm3d(w[0]),
            nn.ReLU(inplace=True),
        ]
        for a, b in pairwise(w):
            layers += [
                nn.ConvTranspose3d(a, b, 4, 2, 1, bias=False),
                nn.BatchNorm3d(b),
                nn.ReLU(True),
            ]
        layers.append(nn.ConvTranspose3d(w[-1], 1, 4, 2, 1))  # last doubling, to R^3
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, Z] -> logits [B, 1, R, R, R]
        return self.net(z[:, :, None, None, None])

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:  # -> [B, 1, R, R, R] in [0, 1]
        return torch.sigmoid(self(z))


def _down3d(widths: tuple[int, ...]) -> nn.Sequential:
    """Voxels [B, 1, R^3] -> features [B, widths[-1], 4, 4, 4] (stride-2 convs, LeakyReLU)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip((1, *widths[:-1]), widths, strict=True)):
        layers.append(nn.Conv3d(a, b, 4, 2, 1, bias=i == 0))
        if i > 0:
            layers.append(nn.BatchNorm3d(b))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _split_latent(h: torch.Tensor, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, 2Z, 1, ...] -> (mu, logvar) [B, Z]; a reshape keeps Z static in the ONNX graph."""
    h = h.reshape(-1, 2, z_dim)
    return h[:, 0], h[:, 1]


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.trunk = _down3d(cfg.d_widths)
        self.head = nn.Conv3d(cfg.d_widths[-1], 1, 4, 1, 0)  # 4^3 -> 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, R^3] -> logits [B]
        return self.head(self.trunk(x)).flatten()


class VoxelEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.trunk = _down3d(cfg.d_widths)
        self.head = nn.Conv3d(cfg.d_widths[-1], 2 * cfg.z_dim, 4, 1, 0)
        self.z_dim = cfg.z_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _split_latent(self.head(self.trunk(x)), self.z_dim)


class PrototypeHead(nn.Module):
    """E's (mu, logvar) features [B, 2Z] -> logits over K prototype latents [B, K].

    Plain parameters, zero at start (uniform weights; no draw from the global RNG, so adding the
    head to a config leaves every other network's initialisation as it was). ``bank`` holds the
    K prototype codes [K, Z] and ``ready`` is 1 once training/models/prototypes.py has filled
    it; until then E answers with its regression head."""

    def __init__(self, z_dim: int, k: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(k, 2 * z_dim))
        self.bias = nn.Parameter(torch.zeros(k))
        self.register_buffer("bank", torch.zeros(k, z_dim))
        self.register_buffer("ready", torch.zeros((), dtype=torch.uint8))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(features, self.weight, self.bias)

    def blend(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits [B, K] -> (mu, logvar) [B, Z]: the softmax-weighted mean of the bank and the
        log of the weighted spread around it (how unsure the answer is)."""
        p = torch.softmax(logits, dim=1)
        mu = p @ self.bank
        var = p @ self.bank.pow(2) - mu.pow(2)
        return mu, torch.log(var.clamp_min(1e-4))


class ImageEncoder(nn.Module):
    """Five 2D conv layers (as in the paper): four stride-2 convs with BN + ReLU, then a 4x4
    conv to (mu, logvar); with ``e_depth`` 2, each stride-2 conv is followed by a 3x3 conv + BN +
    ReLU. Input normalised per the bundle manifest: (pixel/255 - 0.5) / 0.5. With
    ``e_prototypes`` > 0 and a filled bank, (mu, logvar) come from the prototype head instead."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip((3, *cfg.e_widths[:-1]), cfg.e_widths, strict=True)):
            layers.append(nn.Conv2d(a, b, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.ReLU(inplace=True))
            for _ in range(cfg.e_depth - 1):
                layers += [nn.Conv2d(b, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers.append(nn.Conv2d(cfg.e_widths[-1], 2 * cfg.z_dim, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.z_dim = cfg.z_dim
        self.proto = PrototypeHead(cfg.z_dim, cfg.e_prototypes) if cfg.e_prototypes else None

    def forward(
        self, x: torch.Tensor, prototype_logits: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """[B, 3, S, S] -> (mu, logvar) [B, Z] each; with ``prototype_logits``, the prototype
        head's logits [B, K] (training; an argument, not a method, so DDP syncs its gradients)."""
        h = self.net(x)
        if self.proto is None or not (prototype_logits or bool(self.proto.ready)):
            return _split_latent(h, self.z_dim)
        logits = self.proto(h.flatten(1))
        return logits if prototype_logits else self.proto.blend(logits)


def images_to_input(images_u8: torch.Tensor) -> torch.Tensor:
    """[B, S, S, 3] uint8 RGB -> [B, 3, S, S] float, (x / 255 - 0.5) / 0.5 (the manifest's)."""
    return (images_u8.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02), beta 0."""
    if isinstance(module, nn.Conv3d | nn.ConvTranspose3d | nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm3d | nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(cfg: ModelConfig, seed: int = 0) -> dict[str, nn.Module]:
    """All four networks, seeded and initialised."""
    torch.manual_seed(seed)
    nets = {
        "G": Generator(cfg),
        "D": Discriminator(cfg),
        "E": ImageEncoder(cfg),
        "V": VoxelEncoder(cfg),
    }
    for net in nets.values():
        net.apply(init_weights)
    return nets


def to_channels_last(nets: dict[str, nn.Module]) -> None:
    """Channels-last memory for every network (E's 2D convs, the others' 3D ones), where
    oneDNN's CPU kernels are faster (bench/train_memory_format.py)."""
    for key, net in nets.items():
        net.to(memory_format=torch.channels_last if key == "E" else torch.channels_last_3d)
