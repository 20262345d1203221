"""The 32^3 and 64^3 bundles served side by side, in one run (issue "64^3 and sharp").

    python bench/resolution.py [--bundles models/gan3d-cpu models/gan3d-cpu64] [--seconds 10]
                               [--rounds 2]

Each bundle's service is started alone on the idle machine, in turns (A B A B ... for
``--rounds``), and measured as bench/service.py measures gan3d: start-up to ready, the server's
RSS and the PSS of the server with its meshing workers, the median latency of a lone client's
GLB samples (the /v1/sample default) over a kept-alive connection, and wrk throughput of GLB and
npy samples at 32 clients. Also, in-process, the default GLB's median size and triangle count
over 20 prior samples. Prints a Markdown table: the median of the rounds per bundle, and each
bundle's figure as a ratio to the first's. Needs wrk (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from service import measure_server, start_server

from app.bundle import verify
from app.encoding import encode_mesh
from app.engine import make_session
from app.latents import MixturePrior
from app.meshing import to_mesh
from app.meshpool import mesh_options
from app.schemas import Output

ROWS = (  # (key, label, format)
    ("glb_ms", "one client, GLB: median latency", "{:.1f} ms"),
    ("glb32", "32 clients, GLB", "{:.0f} /s"),
    ("npy32", "32 clients, npy", "{:.0f} /s"),
    ("glb_kb", "default GLB size (median of 20 prior samples)", "{:.0f} KB"),
    ("faces", "default GLB triangles (median)", "{:.0f}"),
    ("rss", "server RSS when ready", "{:.0f} MB"),
    ("pss", "server + meshing workers, PSS when ready", "{:.0f} MB"),
    ("cold", "start-up to ready", "{:.1f} s"),
)


def answers(bundle: Path) -> dict:
    """The default GLB of 20 prior samples, made in-process: median bytes and triangles."""
    manifest = verify(bundle)
    sess = make_session(bundle / manifest.file("generator").path, ["CPUExecutionProvider"], 0)
    prior = MixturePrior.load(bundle / manifest.file("prior").path)
    sizes, faces = [], []
    for seed in range(20):
        z = prior.sample(seed)[None].astype(np.float32)
        prob = sess.run(None, {"z": z})[0][0, 0]
        mesh = to_mesh(prob, mesh_options(Output(), manifest.threshold))  # the served default
        sizes.append(len(encode_mesh(mesh, "glb")) / 1024)
        faces.append(len(mesh.faces))
    return {
        "glb_kb": statistics.median(sizes),
        "faces": statistics.median(faces),
        "r": manifest.voxel_resolution,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundles", nargs="+", default=["models/gan3d-cpu", "models/gan3d-cpu64"])
    ap.add_argument("--seconds", type=int, default=10, help="per wrk measurement")
    ap.add_argument("--rounds", type=int, default=2, help="turns per bundle, alternated")
    args = ap.parse_args()
    bundles = [Path(b) for b in args.bundles]
    runs: dict[Path, list[dict]] = {b: [] for b in bundles}
    for _ in range(args.rounds):
        for b in bundles:
            got = measure_server(start_server, b, args.seconds, levels=(32,))
            got["npy32"] = got.pop("npy")[32]
            runs[b].append(got)
    table = {}
    for b in bundles:
        row = {k: statistics.median(r[k] for r in runs[b]) for k in runs[b][0]}
        table[b] = {**row, **answers(b)}
    first = bundles[0]
    head = " | ".join(f"{b.name} ({table[b]['r']}³)" for b in bundles)
    ratios = " | ".join(f"{b.name} / {first.name}" for b in bundles[1:])
    print(f"| figure | {head} | {ratios} |")
    print("|---|" + "---|" * (2 * len(bundles) - 1))
    for key, label, fmt in ROWS:
        cells = " | ".join(fmt.format(table[b][key]) for b in bundles)
        rel = " | ".join(f"{table[b][key] / table[first][key]:.2f}×" for b in bundles[1:])
        print(f"| {label} | {cells} | {rel} |")
    print(f"\n{args.rounds} rounds per bundle, alternated; wrk {args.seconds} s per figure.")


if __name__ == "__main__":
    main()
