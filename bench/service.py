"""Service benchmarks, measured side by side in one run; prints Markdown tables.

    python bench/service.py [--bundle models/gan3d-cpu] [--seconds 10] [--no-plain]

gan3d is measured against a plain FastAPI + ONNX Runtime server (bench/plain_server.py: sync
endpoint, batch 1, the same meshing functions), each started alone on the idle machine, and
against in-process ceilings on the same bundle:

1. cold start (process start -> ready); the server's RSS then, and the PSS of the server and
   its meshing workers together;
2. one client, GLB (the /v1/sample default) over a kept-alive connection: median latency, and
   the same work done directly in-process (prior + model + mesh + GLB) for the overhead;
3. throughput at 32 clients, GLB and npy; npy also at 1 and 8 clients vs the model called
   directly with batches of the same size;
4. ceilings: the model alone at its best batch (1, 8 or 32, one caller; or two callers at
   batch 32, whichever serves more: "the model's best"), and meshing + GLB with the served
   default options on one core (median over 20 prior samples) -> GLB/s one core can mesh.

The load generator is wrk (C; ``apt-get install wrk``), so that it takes little of the CPU it
measures; without it only the in-process figures and an httpx estimate of npy throughput run.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from app.bundle import verify
from app.encoding import encode_mesh
from app.engine import make_session
from app.latents import MixturePrior, from_seed
from app.meshing import to_mesh
from app.meshpool import encode_one, mesh_options
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


def _started(cmd: list[str], env: dict, port: int, ready_path: str):
    """Start ``cmd`` and poll ``ready_path`` until it answers 200 -> (process, url, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(cmd)} exited during start-up")
        time.sleep(0.02)


def start_server(bundle: Path, **settings: str) -> tuple[subprocess.Popen, str, float]:
    """``settings``: more GAN3D_* variables."""
    port = _free_port()
    env = {
        **os.environ,
        "GAN3D_BUNDLE_DIR": str(bundle),
        "GAN3D_PORT": str(port),
        "GAN3D_LOG_LEVEL": "warning",
        **settings,
    }
    return _started([sys.executable, "-m", "app"], env, port, "/health/ready")


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


def wrk_throughput(url: str, clients: int, seconds: int, script: Path = WRK_NPY) -> float:
    """Requests per second from wrk with ``clients`` kept-alive connections."""
    out = _wrk(url, clients, seconds, script)
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


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process and its children (the meshing workers): memory the
    tree uses, each shared library page split among the processes mapping it (a sum of RSS
    would count numpy's and scipy's libraries once per worker)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += (task / "children").read_text().split()
    pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return pss + sum(_tree_pss_mb(int(k)) for k in kids)


def start_plain(bundle: Path) -> tuple[subprocess.Popen, str, float]:
    """bench/plain_server.py under uvicorn, one process."""
    port = _free_port()
    env = {**os.environ, "GAN3D_BUNDLE_DIR": str(bundle)}
    cmd = [sys.executable, "-m", "uvicorn", "bench.plain_server:app", "--port", str(port)]
    return _started([*cmd, "--log-level", "warning"], env, port, "/docs")


def measure_server(start, bundle: Path, seconds: int, levels: tuple[int, ...]) -> dict:
    """Cold start, RSS, lone GLB median, and wrk throughput (npy at ``levels``, GLB at 32)."""
    proc, url, cold = start(bundle)
    try:
        time.sleep(0.5)  # let start-up's stragglers (warm-up, imports) finish
        got = {"cold": cold, "rss": _rss_mb(proc.pid), "pss": _tree_pss_mb(proc.pid)}
        got["glb_ms"] = wrk_median_ms(url, seconds)
        got["npy"] = {c: wrk_throughput(url, c, seconds) for c in levels}
        got["glb32"] = wrk_throughput(url, 32, seconds, WRK_GLB)
        return got
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="models/gan3d-cpu")
    ap.add_argument("--requests", type=int, default=64, help="per level, httpx load generator")
    ap.add_argument("--seconds", type=int, default=10, help="per level, wrk load generator")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain-server contender")
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

    def shape(seed: int) -> np.ndarray:  # [R, R, R] float32 in [0, 1]
        z = prior.sample(seed) if prior else from_seed(seed, z_dim)
        return sess.run(None, {"z": z[None].astype(np.float32)})[0][0, 0]

    glb = Output()  # the /v1/sample default GLB (meshing defaults: app/meshing.py)

    # 1. in-process: the model alone per batch size, the whole GLB path, meshing alone
    model_ms = {c: median_ms(lambda c=c: model(c), 30 if c == 1 else 10) for c in (1, 8, 32)}
    seeds = iter(range(10**7))
    direct_ms = median_ms(lambda: encode_one(shape(next(seeds) % 30), glb, manifest.threshold), 60)
    options = mesh_options(glb, manifest.threshold)  # the served default
    mesh_times, faces = [], []
    for seed in range(20):  # a lone N(0, I) sample can be nearly empty: use the prior's
        prob = shape(seed)
        t = time.perf_counter()
        mesh = to_mesh(prob, options)
        if mesh is not None:
            encode_mesh(mesh, "glb")
            mesh_times.append(time.perf_counter() - t)
            faces.append(len(mesh.faces))
    mesh_ms = statistics.median(mesh_times) * 1000
    model_rate = {c: c / (ms / 1000) for c, ms in model_ms.items()}
    best_batch = max(model_rate, key=model_rate.get)
    # two callers at once (ONNX Runtime sessions take concurrent runs; the service overlaps
    # two batches): shapes/s over 3 s of batches of 32
    stop = time.perf_counter() + 3.0
    done = []

    def caller() -> None:
        while time.perf_counter() < stop:
            model(32)
            done.append(32)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda _: caller(), range(2)))
    model_two = sum(done) / (time.perf_counter() - t0)
    ceiling = max(model_rate[best_batch], model_two)
    mesh_ceiling = 1000 / mesh_ms

    print(f"bundle {manifest.name}, {os.cpu_count()} CPU cores")
    print("| in-process ceiling | value |")
    print("|---|---|")
    print(f"| model only, batch 1 (median) | {model_ms[1]:.1f} ms |")
    print(
        f"| model only at its best batch ({best_batch}) | {model_rate[best_batch]:.0f} shapes/s |"
    )
    print(f"| model only, two callers at batch 32 | {model_two:.0f} shapes/s |")
    print(f"| prior + model + mesh + GLB, one shape (median) | {direct_ms:.1f} ms |")
    print(
        f"| default meshing + GLB, one core, median of {len(mesh_times)} prior samples | "
        f"{mesh_ms:.1f} ms ({statistics.median(faces):.0f} faces) = {mesh_ceiling:.0f} GLB/s |"
    )
    if not shutil.which("wrk"):  # no wrk: an httpx estimate of npy throughput only
        proc, url, _ = start_server(bundle)
        try:
            for c in (1, 8, 32):
                served = asyncio.run(throughput(url, c, args.requests))
                print(f"| {c} clients npy, httpx (no wrk) | {served:.1f} shapes/s |")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return

    # 2. the servers, one at a time on the idle machine
    g = measure_server(start_server, bundle, args.seconds, (1, 8, 32))
    p = None if args.no_plain else measure_server(start_plain, bundle, args.seconds, (32,))
    print(f"\nwrk, {args.seconds} s per cell")
    print("| measurement | gan3d | plain FastAPI + ORT | target |")
    print("|---|---|---|---|")

    def row(name: str, gv: str, pv: str | None, target: str = "") -> None:
        print(f"| {name} | {gv} | {pv or '-'} | {target} |")

    row("cold start to ready", f"{g['cold']:.2f} s", p and f"{p['cold']:.2f} s", "<= 3 s")
    row("server RSS when ready", f"{g['rss']:.0f} MB", p and f"{p['rss']:.0f} MB")
    row(
        "memory when ready, PSS with meshing workers",
        f"{g['pss']:.0f} MB",
        p and f"{p['pss']:.0f} MB",
        "<= 500 MB",
    )
    row(
        "single GLB, 1 client, median",
        f"{g['glb_ms']:.1f} ms ({g['glb_ms'] / direct_ms - 1:+.0%} over in-process)",
        p and f"{p['glb_ms']:.1f} ms",
        "<= 12 ms",
    )
    row(
        "GLB, 32 clients",
        f"{g['glb32']:.0f}/s = {g['glb32'] / mesh_ceiling:.2f}x one-core meshing",
        p and f"{p['glb32']:.0f}/s = {p['glb32'] / mesh_ceiling:.2f}x",
        ">= 1.5x",
    )
    row(
        "npy, 32 clients",
        f"{g['npy'][32]:.0f}/s = {g['npy'][32] / ceiling:.0%} of the model's best"
        + (f", {g['npy'][32] / p['npy'][32]:.2f}x plain" if p else ""),
        p and f"{p['npy'][32]:.0f}/s = {p['npy'][32] / ceiling:.0%}",
        ">= 95%, >= plain",
    )
    for c in (1, 8):
        row(
            f"npy, {c} clients vs the model at batch {c}",
            f"{g['npy'][c]:.0f}/s = {g['npy'][c] / model_rate[c]:.0%}",
            None,
        )


if __name__ == "__main__":
    main()
