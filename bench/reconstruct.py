"""/v1/reconstruct latency, one client, by kind of photo; side by side in one run with the same
work done in-process. Prints a Markdown table.

    python bench/reconstruct.py [--bundle models/gan3d-cpu] [--images 12] [--repeats 3]

Inputs are real validation renders (built by ``python -m training data --preset cpu``; never the
test split): products on white or plain backgrounds, renders on photographs (cropped to the
object, as training framed them) and wide photographs nobody cropped (the object 16-37% of the
frame's side, so the segmenter looks up to three times). Each is POSTed as PNG to a server
started alone on the idle machine, once as npy (the answer's voxels) and once as the default GLB
mesh; the in-process figure is the same pipeline called directly with the bundle's ONNX
sessions (decode + framing with the segmenter + encoder + blend + generator [+ mesh + GLB]), so
served / in-process is what the serving adds. Stages of the in-process work are timed apart.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import statistics
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from service import median_ms, start_server  # bench/service.py (this folder is on sys.path)

from app import images
from app.bundle import verify
from app.engine import make_session
from app.meshpool import encode_one
from app.prototypes import Prototypes
from app.schemas import Output
from app.settings import Settings
from training.data.real_set import load_real, real_dataset_for, wide_photos
from training.engine.config import PRESETS

KINDS = ("white/plain", "photograph", "wide photograph")


def inputs(n: int) -> dict[str, list[bytes]]:
    """``n`` PNG files of each kind from the real validation split."""
    folder = real_dataset_for(PRESETS["cpu"], Path("data"), install=False)
    val = load_real(folder, "val")
    wide = wide_photos(folder, "val")["images"]
    picked: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    for i in range(len(val["images"])):
        for kind, im in zip(val["background"][i], val["images"][i], strict=True):
            picked[KINDS[0] if kind in ("white", "plain") else KINDS[1]].append(im)
        picked[KINDS[2]].append(wide[i][0])
    return {k: [_png(im) for im in ims[:: max(1, len(ims) // n)][:n]] for k, ims in picked.items()}


def _png(im: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(im).save(buf, format="PNG")
    return buf.getvalue()


class InProcess:
    """/v1/reconstruct's pipeline without the server: the bundle's sessions, one call each."""

    def __init__(self, bundle: Path) -> None:
        self.m = verify(bundle)
        roles = [r for r in ("generator", "image_encoder", "segmenter") if self.m.file(r)]
        self.sess = {
            r: make_session(bundle / self.m.file(r).path, ["CPUExecutionProvider"], 0)
            for r in roles
        }
        self.protos = Prototypes.load(bundle / self.m.file("prototypes").path, self.m.latent.size)
        self.segment = self._segment if "segmenter" in self.sess else None
        self.times: dict[str, list[float]] = {"framing": [], "encoder": [], "generator": []}

    def _run(self, role: str, x: np.ndarray) -> list[np.ndarray]:
        s = self.sess[role]
        return s.run(None, {s.get_inputs()[0].name: x})

    def _segment(self, x: np.ndarray) -> np.ndarray:
        return self._run("segmenter", x[None])[0][0, 0]

    def voxels(self, data: bytes) -> np.ndarray:
        t0 = time.perf_counter()
        pic = images.decode(data, max_pixels=Settings().max_image_pixels)
        x, _ = images.find_object(pic, self.m.image, self.segment)
        t1 = time.perf_counter()
        outs = self._run("image_encoder", x[None])
        guess, _ = self.protos.guess(outs[2][0])
        z = self.protos.blend(outs[2], guess)
        t2 = time.perf_counter()
        prob = self._run("generator", z)[0][0, 0]
        t3 = time.perf_counter()
        for key, a, b in (("framing", t0, t1), ("encoder", t1, t2), ("generator", t2, t3)):
            self.times[key].append(b - a)
        return prob

    def glb(self, data: bytes) -> bytes | None:
        return encode_one(self.voxels(data), Output(), self.m.image_threshold or self.m.threshold)


def each_ms(fn, items: list[bytes], repeats: int) -> float:
    """Median ms of ``fn`` over every item, ``repeats`` rounds (service.median_ms's timing)."""
    rounds = itertools.chain.from_iterable(itertools.repeat(items, repeats))
    return median_ms(lambda: fn(next(rounds)), len(items) * repeats)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="models/gan3d-cpu")
    ap.add_argument("--images", type=int, default=12, help="inputs of each kind")
    ap.add_argument("--repeats", type=int, default=3, help="times each input is sent")
    args = ap.parse_args()
    bundle = Path(args.bundle)
    files = inputs(args.images)
    local = InProcess(bundle)
    direct = {}
    for kind, items in files.items():
        for key in local.times:
            local.times[key].clear()
        npy = each_ms(local.voxels, items, args.repeats)
        stages = {k: statistics.median(v) * 1000 for k, v in local.times.items()}
        direct[kind] = (npy, each_ms(local.glb, items, args.repeats), stages)

    proc, url, _ = start_server(bundle)
    served = {}
    try:
        with httpx.Client(base_url=url, timeout=60) as client:

            def post(data: bytes, output: dict | None = None) -> None:
                form = {"output": json.dumps(output)} if output else {}
                r = client.post("/v1/reconstruct", files={"image": ("x.png", data)}, data=form)
                r.raise_for_status()

            post(files[KINDS[0]][0])  # the first request pays for connection set-up
            for kind, items in files.items():
                npy = each_ms(lambda d: post(d, {"format": "npy"}), items, args.repeats)
                served[kind] = (npy, each_ms(post, items, args.repeats))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print(f"bundle {local.m.name} {local.m.version}; {args.images} inputs of each kind x "
          f"{args.repeats}; medians; one client")  # fmt: skip
    print("| input | npy served (in-process) | GLB served (in-process) | "
          "in-process stages: framing + segmenter / encoder / generator |")  # fmt: skip
    print("|---|---|---|---|")
    for kind in KINDS:
        (dn, dg, st), (sn, sg) = direct[kind], served[kind]
        print(
            f"| {kind} | {sn:.1f} ms ({dn:.1f}, {sn / dn - 1:+.0%}) | "
            f"{sg:.1f} ms ({dg:.1f}, {sg / dg - 1:+.0%}) | "
            f"{st['framing']:.1f} / {st['encoder']:.1f} / {st['generator']:.1f} ms |"
        )


if __name__ == "__main__":
    main()
