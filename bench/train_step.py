"""Time one training step (vae stage and gan stage) for candidate model configs, side by side.

    python bench/train_step.py            # prints a table; used to design the `cpu` preset

Synthetic batches (random voxels and images) so that only the networks are measured.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from training.engine.config import PRESETS
from training.models.networks import ModelConfig, build

E_SMALL = (32, 64, 128, 256)
CANDIDATES = {
    "paper@32 (512-256-128)": ModelConfig(
        resolution=32,
        g_widths=(512, 256, 128),
        d_widths=(128, 256, 512),
        image_size=64,
        e_widths=(64, 128, 256, 512),
    ),
    "cpu-wide (256-128-64)": ModelConfig(
        resolution=32, g_widths=(256, 128, 64), d_widths=(64, 128, 256), e_widths=E_SMALL
    ),
    "cpu-mid (192-96-48)": ModelConfig(
        resolution=32, g_widths=(192, 96, 48), d_widths=(32, 64, 128), e_widths=E_SMALL
    ),
    "cpu preset (128-64-32)": PRESETS["cpu"].model,
}


def step_time(cfg: ModelConfig, batch: int, gan: bool, reps: int = 4) -> float:
    nets = build(cfg)
    params = [p for k in ("G", "E", "V") for p in nets[k].parameters()]
    opt = torch.optim.Adam(params, 1e-4)
    opt_d = torch.optim.Adam(nets["D"].parameters(), 1e-5)
    r, s = cfg.resolution, cfg.image_size
    vox = (torch.rand(batch, 1, r, r, r) < 0.1).float()
    img = torch.randn(batch, 3, s, s)
    times = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        mu_v, lv = nets["V"](vox)
        mu_e, le = nets["E"](img)
        logits = nets["G"](torch.cat([mu_v, mu_e, torch.randn_like(mu_v)]))
        lv_, le_, lp = logits.split(batch)
        loss = F.binary_cross_entropy_with_logits(lv_, vox) + F.binary_cross_entropy_with_logits(
            le_, vox
        )
        loss = loss + 1e-3 * (lv.exp().mean() + le.exp().mean())
        if gan:
            out = nets["D"](torch.cat([vox, torch.sigmoid(lp).detach()]))
            opt_d.zero_grad()
            out.mean().backward()
            opt_d.step()
            loss = loss + nets["D"](torch.sigmoid(lp)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| config | batch | vae step s | gan step s | G params M |")
    print("|---|---|---|---|---|")
    for name, cfg in CANDIDATES.items():
        g = sum(p.numel() for p in build(cfg)["G"].parameters()) / 1e6
        for batch in (32,):
            vae, gan = step_time(cfg, batch, gan=False), step_time(cfg, batch, gan=True)
            print(f"| {name} | {batch} | {vae:.2f} | {gan:.2f} | {g:.1f} |", flush=True)


if __name__ == "__main__":
    main()
