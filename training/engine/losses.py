"""The 3D-VAE-GAN's losses and the paper's adaptive discriminator step."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def should_update_d(accuracy: float, threshold: float) -> bool:
    """The paper's adaptive rule: step D only while its accuracy on the last batch < threshold."""
    return accuracy < threshold


def discriminator_step(
    opt_d: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    d_loss: torch.Tensor,
    accuracy: float,
    threshold: float,
    *,
    distributed: bool = False,
) -> bool:
    """Step D by the adaptive rule; returns whether it stepped. D's backward pass is skipped when
    it will not step (most steps of a trained D: 72% in the cpu preset's adversarial stage),
    except under DDP, where every rank must run the same backward passes. The scaler is updated
    only after a step: a GradScaler with no inf check recorded raises in ``update``."""
    update = should_update_d(accuracy, threshold)
    if update or distributed:
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
    if update:
        scaler.step(opt_d)
        scaler.update()
    return update


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q || N(0, I)) averaged over latent dims and batch. mu, logvar [B, Z] -> scalar."""
    return 0.5 * torch.mean(mu.pow(2) + logvar.exp() - 1.0 - logvar)


def recon_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Weighted BCE averaged over voxels. logits, target [B, 1, R, R, R]."""
    w = torch.tensor(pos_weight, device=logits.device, dtype=logits.dtype)
    return F.binary_cross_entropy_with_logits(logits.float(), target, pos_weight=w.float())
