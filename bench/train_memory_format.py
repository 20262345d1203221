"""The cpu preset's training steps in contiguous vs channels-last memory, side by side.

    python bench/train_memory_format.py        # prints a table (about 2 min on 2 cores)

training/engine/train.py puts the networks in channels-last memory on CPU (oneDNN's faster kernels);
this measures what that buys for each kind of step, on synthetic batches (only the networks
are measured), alternating the two formats so that a machine whose speed drifts affects both.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from training.engine.config import PRESETS
from training.models.networks import build, to_channels_last

B = 32
LAYOUTS = ("contiguous", "channels-last")


def _nets(layout: str) -> dict[str, torch.nn.Module]:
    nets = build(PRESETS["cpu"].model, seed=0)
    for n in nets.values():
        n.train()
    if layout == "channels-last":
        to_channels_last(nets)  # as training/engine/train.py does on CPU
    return nets


def _steps(nets: dict[str, torch.nn.Module]) -> dict:
    """One closure per step kind (as training/engine/train.py runs them; Adam steps left out)."""
    cfg = PRESETS["cpu"].model
    r, s = cfg.resolution, cfg.image_size
    vox = (torch.rand(B, 1, r, r, r) < 0.1).float()
    img = torch.randn(B, 3, s, s)
    G, D, V, E = nets["G"], nets["D"], nets["V"], nets["E"]

    def voxel() -> None:  # vae, vae-refine, tie stages: V and G
        G.requires_grad_(True)
        mu, logvar = V(vox)
        logits = G(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
        F.binary_cross_entropy_with_logits(logits, vox).backward()

    def adversarial() -> None:  # vae-gan, a step where D does not step (72% of them)
        G.requires_grad_(True)
        mu, _ = V(vox)
        logits = G(torch.cat([mu, torch.randn_like(mu)]))
        with torch.no_grad():
            D(torch.cat([vox, torch.sigmoid(logits[B:])]))  # D's accuracy
        D.requires_grad_(False)
        g_out = D(torch.cat([vox, torch.sigmoid(logits[B:])]))[B:]
        loss = F.binary_cross_entropy_with_logits(logits[:B], vox) + g_out.mean()
        loss.backward()
        D.requires_grad_(True)

    def image() -> None:  # image stages: E through the frozen G
        G.eval().requires_grad_(False)
        mu, _ = E(img)
        F.binary_cross_entropy_with_logits(G(mu), vox).backward()
        G.train()

    def prototype() -> None:  # prototype stages: E alone
        E(img, prototype_logits=True).logsumexp(1).mean().backward()

    return {"voxel": voxel, "adversarial": adversarial, "image": image, "prototype": prototype}


def main(reps: int = 6) -> None:
    torch.manual_seed(0)
    steps = {layout: _steps(_nets(layout)) for layout in LAYOUTS}
    times: dict[tuple[str, str], list[float]] = {}
    for kind in steps["contiguous"]:
        for rep in range(reps + 1):
            for name in LAYOUTS:  # alternating
                t = time.perf_counter()
                steps[name][kind]()
                if rep:  # the first is a warm-up
                    times.setdefault((kind, name), []).append(time.perf_counter() - t)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {B}")
    print("| step | contiguous s | channels-last s | ratio |")
    print("|---|---|---|---|")
    for kind in steps["contiguous"]:
        a, b = (statistics.median(times[kind, name]) for name in LAYOUTS)
        print(f"| {kind} | {a:.3f} | {b:.3f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
