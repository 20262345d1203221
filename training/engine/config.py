"""Training presets: one TrainConfig object describes a whole run (and is saved in checkpoints).

Stages run in order; each stage enables loss terms of the 3D-VAE-GAN objective
    L = adv * L_GAN + a1 * L_KL + a2 * L_recon (+ latent_match * |mu_E - mu_V|^2)
`vae` stages train the encoders and G on reconstruction (a warm start: cheap, stable gradients);
`gan` stages add the discriminator with the paper's adaptive rule (D steps only while its
accuracy on the last batch is below d_acc_threshold).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from training.data.shapes import all_attributes
from training.models.networks import ModelConfig

STAGE_MODES = ("joint", "voxel", "image", "prototype")


@dataclass(frozen=True)
class Stage:
    name: str
    steps: int
    adversarial: float = 0.0  # weight of the GAN loss for G (0 = no D in this stage)
    lr_g: float = 1e-3  # generator learning rate
    lr_d: float = 1e-5  # discriminator learning rate
    lr_e: float = 1e-3  # encoders' learning rate
    # which networks train: "joint" = G, V and E together (the paper's 3D-VAE-GAN); "voxel" = G
    # and V only (E idle; the latent space is learnt at half the G cost); "image" = E only, fitted
    # to the frozen G (eval mode, as served) and V: reconstruction through G + latent match;
    # "prototype" = E alone, as a classifier over prototype codes (training/models/prototypes.py)
    mode: str = "joint"
    # image augmentation: brightness, contrast, saturation scaled by U(1 - j, 1 + j) (0 = none)
    color_jitter: float = 0.0
    # joint and voxel stages: weight of the tied-attribute terms (one latent dimension per
    # binary attribute across categories, training/engine/attributes.py; 0 = off)
    tie_attributes: float = 0.0
    # start the G/V/E optimisers' Adam moments afresh at this stage's first step: after
    # thousands of steps without G and V, their second moments are stale and small, and with
    # beta1 0.5 the first updates of a new loss were ~16x the learning rate (recon 0.025 -> 0.30
    # within 10 steps of the tie stage)
    reset_optimisers: bool = False
    # samples per step in this stage (0: the run's batch_size); a GPU stage takes more per step
    batch_size: int = 0

    def __post_init__(self) -> None:
        if self.mode not in STAGE_MODES:
            raise ValueError(f"stage {self.name!r}: mode must be one of {STAGE_MODES}")
        if self.mode in ("image", "prototype") and self.adversarial > 0:
            raise ValueError(f"stage {self.name!r}: an {self.mode} stage has no adversarial term")
        if self.batch_size < 0:
            raise ValueError(f"stage {self.name!r}: batch_size must be 0 (the run's) or more")
        if self.mode in ("image", "prototype") and self.tie_attributes > 0:
            raise ValueError(f"stage {self.name!r}: an {self.mode} stage does not train V or G")


@dataclass(frozen=True)
class TrainConfig:
    preset: str
    data: str  # a DATA_PRESETS name
    model: ModelConfig
    stages: tuple[Stage, ...]
    batch_size: int = 32
    seed: int = 0
    beta1: float = 0.5  # Adam beta1 (paper: 0.5)
    a1_kl: float = 5e-3  # KL weight (per latent dim, averaged)
    a2_recon: float = 1.0  # reconstruction weight (weighted BCE, averaged over voxels)
    pos_weight: float = 3.0  # BCE weight of occupied voxels (grids are ~90% empty)
    latent_match: float = 1.0  # pull the image encoder's mu to the voxel encoder's
    d_acc_threshold: float = 0.8  # paper: update D only while its last-batch accuracy < 0.8
    real_fraction: float = 0.0  # share of each batch from real models (training/data/real_set.py)
    # also the real models of sweethome3d-furniture-nonfree (`train --nonfree`; measured, not
    # the default: docs/model_history.md)
    real_nonfree: bool = False
    # prototype stages: soft label = softmax(IoU with each prototype / this)
    proto_temperature: float = 0.05
    checkpoint_every: int = 200  # steps
    log_every: int = 10  # steps
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model.e_prototypes == 0 and any(s.mode == "prototype" for s in self.stages):
            raise ValueError(f"preset {self.preset!r}: a prototype stage needs model.e_prototypes")
        binary = sum(kind == "binary" for _, kind, _ in all_attributes())
        if self.model.z_dim < binary and any(s.tie_attributes > 0 for s in self.stages):
            raise ValueError(
                f"preset {self.preset!r}: tied attributes need z_dim >= {binary} (one latent "
                f"dimension per binary attribute), got {self.model.z_dim}"
            )

    def extends(self, stored: TrainConfig) -> bool:
        """Whether this config continues ``stored``: same settings, stages appended. A run that
        never had a prototype head may gain one (it starts at zero, as in a fresh run)."""
        mine, theirs = self.to_dict(), stored.to_dict()
        mine["stages"] = theirs["stages"] = None
        if theirs["model"]["e_prototypes"] == 0:
            mine["model"]["e_prototypes"] = 0
        return self.stages[: len(stored.stages)] == stored.stages and mine == theirs

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def stage_start(self, index: int) -> int:
        """The global step at which stage ``index`` begins."""
        return sum(s.steps for s in self.stages[:index])

    def stage_at(self, step: int) -> tuple[int, Stage]:
        """(index, stage) that owns global ``step`` (0-based)."""
        end = 0
        for i, s in enumerate(self.stages):
            end += s.steps
            if step < end:
                return i, s
        return len(self.stages) - 1, self.stages[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d["model"].items()}
        )
        d["stages"] = tuple(Stage(**_current(s)) for s in d["stages"])
        return TrainConfig(**d)


# switches a stage once had, measured without gain and removed (docs/model_history.md); older
# checkpoints and manifests carry them, off
RETIRED_STAGE_SWITCHES = ("leave_self_out", "strong_augment")


def _current(stage: dict[str, Any]) -> dict[str, Any]:
    """A stored stage's fields without the retired switches; one that was on is refused."""
    stage = dict(stage)
    for key in RETIRED_STAGE_SWITCHES:
        if stage.pop(key, False):
            raise ValueError(f"stage {stage.get('name')!r} uses {key}, which was removed")
    return stage


# The stages of the cpu recipes (cpu, cpu64), in order. V + G learn the latent space alone:
_VAE_STAGES = (
    Stage("vae", 1600, lr_g=5e-4, lr_e=5e-4, mode="voxel"),  # V + G warm start
    Stage("vae-refine", 700, lr_g=2e-4, lr_e=2e-4, mode="voxel"),
)
# a small GAN weight: G sharpens within V's latent space (32^3 only)
_CPU_GAN_STAGE = Stage(
    "vae-gan", 500, adversarial=0.05, lr_g=2e-4, lr_d=1e-4, lr_e=2e-4, mode="voxel"
)
_IMAGE_STAGES = (
    Stage("image", 2000, lr_e=5e-4, mode="image"),  # E regresses z, G and V frozen
    Stage("image-refine", 900, lr_e=1.5e-4, mode="image"),
    Stage("image-more", 2000, lr_e=2e-4, mode="image"),
    # E classifies over the prototype codes (training/models/prototypes.py)
    Stage("image-proto", 4000, lr_e=3e-4, mode="prototype"),
    Stage("image-proto-jitter", 4000, lr_e=1e-4, mode="prototype", color_jitter=0.3),
)
# shared attributes tied to one latent dimension each (training/engine/attributes.py); the
# prototype bank is re-encoded at the stage's end
_TIE_STAGES = (
    Stage("tie-attributes", 1200, lr_g=2e-4, lr_e=2e-4, mode="voxel", tie_attributes=1.0,
          reset_optimisers=True),
    Stage("tie-settle", 600, lr_g=1e-4, lr_e=1e-4, mode="voxel", tie_attributes=0.2),
)  # fmt: skip

# The shipped recipe, for 2 CPU cores (about 2.5 h with the segmenter): 32^3 voxels, 64 px
# images, narrow G/D/V. The latent space is learnt by V and G alone (voxel stages), then the
# image encoder is fitted to the frozen G and V (image stages), then it classifies over 1,024
# prototype codes (prototype stages), then shared attributes are tied to latent dimensions (tie
# stages). How the recipe came to be: docs/model_history.md.
_CPU = TrainConfig(
    preset="cpu",
    data="cpu",
    model=ModelConfig(resolution=32, z_dim=200, g_widths=(128, 64, 32), d_widths=(32, 64, 128),
                      image_size=64, e_widths=(48, 96, 192, 384), e_depth=2, e_prototypes=1024),
    stages=(*_VAE_STAGES, _CPU_GAN_STAGE, *_IMAGE_STAGES, *_TIE_STAGES),
    batch_size=32,
    real_fraction=0.4,
    checkpoint_every=100,
)  # fmt: skip

PRESETS: dict[str, TrainConfig] = {
    # Wu et al. 2016 exactly: 64^3, z = 200, G 512-256-128-64, batch 100, lr G 0.0025,
    # D 1e-5, Adam beta1 0.5, D updated while its accuracy < 80%; 3D-VAE-GAN terms throughout.
    "paper": TrainConfig(
        preset="paper",
        data="paper",
        model=ModelConfig(resolution=64, z_dim=200, g_widths=(512, 256, 128, 64),
                          d_widths=(64, 128, 256, 512), image_size=128,
                          e_widths=(64, 128, 256, 512, 512)),
        stages=(Stage("vae-gan", 20_000, adversarial=1.0, lr_g=0.0025, lr_d=1e-5, lr_e=1e-4),),
        batch_size=100,
        checkpoint_every=1000,
    ),
    "cpu": _CPU,
    # 64^3 (issue "64^3 and sharp"): the cpu recipe with G straight to 64^3 as in the paper (one
    # more doubling of G: 128-64-32-16; D and V mirror it) and without the adversarial stage,
    # which speckles 64^3 surfaces (measured: docs/model_history.md, "64³")
    "cpu64": replace(
        _CPU,
        preset="cpu64",
        data="cpu64",
        model=replace(_CPU.model, resolution=64, g_widths=(128, 64, 32, 16),
                      d_widths=(16, 32, 64, 128)),
        stages=(*_VAE_STAGES, *_IMAGE_STAGES, *_TIE_STAGES),
    ),
    # Seconds, for tests.
    "tiny": TrainConfig(
        preset="tiny",
        data="tiny",
        model=ModelConfig(resolution=16, z_dim=16, g_widths=(16, 8), d_widths=(8, 16),
                          image_size=32, e_widths=(8, 16, 16)),
        stages=(Stage("vae", 30, lr_g=3e-3, lr_e=3e-3), Stage("gan", 10, adversarial=0.05,
                                                              lr_g=1e-3, lr_d=1e-4)),
        batch_size=8,
        checkpoint_every=20,
        log_every=5,
    ),
}  # fmt: skip
