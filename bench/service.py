"""Service benchmarks, measured side by side in one run; prints a Markdown table.

    python bench/service.py [--bundle models/gan3d-cpu] [--requests 64] [--seconds 10]

1. cold start: process start -> /health/ready 200, and the server's RSS then;
2. one client on a kept-alive connection: model only (ONNX Runtime, batch 1), the same work
   done directly in-process (prior sample + model + meshing + GLB: what the service must do),
   and end-to-end POST /v1/sample GLB over HTTP; service overhead = end to end / direct - 1;
3. throughput at 1 / 8 / 32 concurrent clients (npy output) vs calling the model directly
   with batches of the same sizes. The load generator is wrk (C; ``apt-get install wrk``) when
   installed, so that it takes little of the CPU it measures; otherwise an httpx client;
4. meshing + GLB encoding of shapes upsampled to 64^3 (the default output path), median over
   20 samples from the bundle's prior.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from app.bundle import verify
from app.encoding import encode_mesh
from app.engine import make_session
from app.latents import MixturePrior, from_seed
from app.meshing import MeshOptions, to_mesh
from app.results import encode_one
from app.schemas import Output

WRK_NPY = Path(__file__).with_name("sample_npy.lua")
WRK_GLB = Path(__file__).with_name("sample_glb.lua")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(bundle: Path) -> tuple[subprocess.Popen, str, float]:
    port = _free_port()
    env = {
        **os.environ,
        "GAN3D_BUNDLE_DIR": str(bundle),
        "GAN3D_PORT": str(port),
        "GAN3D_LOG_LEVEL": "warning",
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        time.sleep(0.02)


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _wrk(url: str, clients: int, seconds: int, script: Path) -> str:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"{url}/v1/sample",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if re.search(r"Non-2xx", out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return out


def wrk_throughput(url: str, clients: int, seconds: int) -> float:
    """Requests per second from wrk with ``clients`` kept-alive connections."""
    out = _wrk(url, clients, seconds, WRK_NPY)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def wrk_median_ms(url: str, seconds: int) -> float:
    """Median latency of GLB samples over one kept-alive connection."""
    out = _wrk(url, 1, seconds, WRK_GLB)
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


async def throughput(url: str, clients: int, requests: int) -> float:
    async with httpx.AsyncClient(timeout=60) as client:
        seeds = iter(range(10**6, 10**6 + requests))

        async def worker() -> None:
            for seed in seeds:
                r = await client.post(
                    f"{url}/v1/sample", json={"seeds": [seed], "output": {"format": "npy"}}
                )
                r.raise_for_status()

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return requests / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="models/gan3d-cpu")
    ap.add_argument("--requests", type=int, default=64, help="per level, httpx load generator")
    ap.add_argument("--seconds", type=int, default=10, help="per level, wrk load generator")
    args = ap.parse_args()
    bundle = Path(args.bundle)
    manifest = verify(bundle)
    z_dim = manifest.latent.size
    sess = make_session(bundle / manifest.file("generator").path, ["CPUExecutionProvider"], 0)
    prior_file = manifest.file("prior")
    prior = MixturePrior.load(bundle / prior_file.path) if prior_file else None
    rng = np.random.default_rng(0)

    def model(batch: int) -> np.ndarray:
        z = rng.standard_normal((batch, z_dim)).astype(np.float32)
        return sess.run(None, {"z": z})[0]

    glb = Output()  # the /v1/sample default: GLB, upsampled x2

    def direct(seed: int) -> bytes | None:
        z = prior.sample(seed) if prior else from_seed(seed, z_dim)
        prob = sess.run(None, {"z": z[None].astype(np.float32)})[0][0, 0]
        return encode_one(prob, glb, manifest.threshold)

    proc, url, cold = start_server(bundle)
    try:
        rss = _rss_mb(proc.pid)
        model_ms = median_ms(lambda: model(1), 30)
        seeds = iter(range(10**7))
        direct_ms = median_ms(lambda: direct(next(seeds) % 30), 60)
        generator = "wrk" if shutil.which("wrk") else "httpx"
        if generator == "wrk":  # the same 30 seeds, through HTTP, from a C client
            e2e_ms = wrk_median_ms(url, args.seconds)
        else:
            seeds = iter(range(10**7))
            with httpx.Client(base_url=url, timeout=60) as client:  # one kept-alive connection
                e2e_ms = median_ms(
                    lambda: client.post(
                        "/v1/sample", json={"seeds": [next(seeds) % 30]}
                    ).raise_for_status(),
                    60,
                )
        rows = []
        for c in (1, 8, 32):
            if generator == "wrk":
                served = wrk_throughput(url, c, args.seconds)
            else:
                served = asyncio.run(throughput(url, c, args.requests))
            direct_rate = c / (median_ms(lambda c=c: model(c), 10) / 1000)
            rows.append((c, served, direct_rate))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # meshing + GLB over 20 shapes from the bundle's prior (a lone N(0, I) sample can be
    # nearly empty, which flatters the timing); median time and faces
    options = MeshOptions(threshold=manifest.threshold, upsample=64 // manifest.voxel_resolution)
    mesh_times, faces = [], []
    for seed in range(20):
        z = prior.sample(seed) if prior else from_seed(seed, z_dim)
        prob = sess.run(None, {"z": z[None].astype(np.float32)})[0][0, 0]
        t = time.perf_counter()
        mesh = to_mesh(prob, options)
        if mesh is not None:
            encode_mesh(mesh, "glb")
            mesh_times.append(time.perf_counter() - t)
            faces.append(len(mesh.faces))
    mesh_ms = statistics.median(mesh_times) * 1000

    per_level = f"{args.seconds} s" if generator == "wrk" else f"{args.requests} requests"
    print(
        f"bundle {manifest.name}, {os.cpu_count()} CPU cores, load generator {generator} "
        f"({per_level} per level)"
    )
    print("| measurement | value |")
    print("|---|---|")
    print(f"| cold start to ready | {cold:.2f} s |")
    print(f"| server RSS when ready | {rss:.0f} MB |")
    print(f"| model only, batch 1 (median) | {model_ms:.1f} ms |")
    print(f"| direct in-process: prior + model + mesh + GLB (median) | {direct_ms:.1f} ms |")
    print(
        f"| POST /v1/sample GLB end to end (median) | {e2e_ms:.1f} ms "
        f"(overhead {e2e_ms / direct_ms - 1:.0%} over direct) |"
    )
    print(
        f"| meshing + GLB at 64^3, median of {len(mesh_times)} prior samples | {mesh_ms:.1f} ms "
        f"(median {statistics.median(faces):.0f} faces) |"
    )
    for c, served, direct_rate in rows:
        print(
            f"| {c} clients: served / direct model same batch | {served:.1f} / "
            f"{direct_rate:.1f} shapes/s = {served / direct_rate:.0%} |"
        )


if __name__ == "__main__":
    main()
