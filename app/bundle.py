"""The model-bundle contract shared by training (writer) and the service (reader).

A bundle is a folder: ``manifest.json`` + the files it lists (ONNX networks, concept vectors,
model card, previews, metrics). The manifest pins every file's sha256 and every ONNX file's
input/output signature; :func:`verify` checks both and raises a typed :class:`BundleError`
naming the file and the mismatch. The service refuses to serve a bundle that does not verify.

This module imports neither torch nor FastAPI: only pydantic, numpy-free stdlib and (lazily,
inside :func:`verify`) onnxruntime to read ONNX signatures.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

FileRole = Literal[
    "generator",  # z [B, Z] -> occupancy probabilities [B, 1, R, R, R]
    "image_encoder",  # image [B, 3, S, S] -> mu, logvar [B, Z]
    "voxel_encoder",  # voxels [B, 1, R, R, R] -> mu, logvar [B, Z]
    # z [B, Z], target [B, R, R, R] -> gradient [B, Z] and loss [B] of the generator's
    # reconstruction loss (G(z) against the target), so /v1/encode can fit z by gradient steps
    "generator_gradient",
    # image [B, 3, S, S] (the image encoder's input) -> object probability [B, 1, S, S]: cuts the
    # object out of a photograph whose background the colour rule cannot find (app/images.py)
    "segmenter",
    "concepts",  # .npz of named latent vectors
    "prior",  # .npz of a Gaussian mixture fitted to encoded training shapes (latent.prior)
    "directions",  # .json of named edit directions (training/export/directions.py)
    # .npz of the image encoder's prototype codes: bank [K, Z] float32, categories [K] str
    # (image.prototypes = K; the encoder then also outputs their logits)
    "prototypes",
    # image [B, 3, S, S] (the image encoder's input) -> unit feature vectors [B, D] of a network
    # that knows photos of everything (ImageNet): tells whether a photo shows one of the
    # categories at all (/v1/reconstruct's "Not recognised"; app/recognition.py)
    "recognizer",
    # .npz: references [N, D] (the recognizer's features of train renders), k, threshold
    "recognition",
    "metrics",  # evaluation JSON
    "model_card",
    "preview",
    "other",
]
ONNX_ROLES = (
    "generator",
    "image_encoder",
    "voxel_encoder",
    "generator_gradient",
    "segmenter",
    "recognizer",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    name: str
    # A str entry is a symbolic (dynamic) axis such as "batch"; an int is fixed.
    shape: list[int | str]
    dtype: Literal["float32", "float16", "int64", "uint8"] = "float32"


class OnnxSignature(_Strict):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class FileEntry(_Strict):
    path: str  # relative to the bundle folder, POSIX separators
    role: FileRole
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    onnx: OnnxSignature | None = None

    @model_validator(mode="after")
    def _onnx_roles_have_signatures(self) -> FileEntry:
        if self.role in ONNX_ROLES and self.onnx is None:
            raise ValueError(f"file {self.path!r} has role {self.role!r} but no onnx signature")
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ValueError(f"file path {self.path!r} must be relative and inside the bundle")
        return self


class LatentSpec(_Strict):
    size: int = Field(gt=0)
    # "normal": z ~ N(0, std^2 I). "mixture": z from the Gaussian mixture in the file with role
    # "prior" (weights [K], means [K, Z], chol [K, Z, Z] lower-triangular, names [K]).
    prior: Literal["normal", "mixture"] = "normal"
    std: float = Field(default=1.0, gt=0)


class ImageSpec(_Strict):
    size: int = Field(gt=0)  # square side in pixels
    channel_order: Literal["RGB"] = "RGB"
    layout: Literal["NCHW"] = "NCHW"
    # pixel in [0, 1] -> (pixel - mean) / std, per channel
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # K when the encoder scores K prototype codes (file role "prototypes"): it then has a
    # third output, their logits [batch, K], and /v1/reconstruct takes a category hint
    prototypes: int | None = Field(default=None, gt=0)
    # D when the bundle has a recognizer (file role "recognizer"): its features [batch, D]
    recognizer_features: int | None = Field(default=None, gt=0)


class AttributeSpec(_Strict):
    name: str
    kind: Literal["binary", "discrete", "continuous"]
    categories: list[str]  # categories that carry this attribute


class TrainingSummary(_Strict):
    preset: str
    seed: int
    steps: int = Field(ge=0)
    wall_time_s: float = Field(ge=0)
    hardware: str
    data: str  # what it was trained on
    commands: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class Manifest(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    latent: LatentSpec
    voxel_resolution: int = Field(gt=0)
    axis_order: Literal["xyz"] = "xyz"  # voxel array axes; y is up, +z is the front
    image: ImageSpec | None = None
    threshold: float = Field(default=0.5, gt=0, lt=1)
    # /v1/reconstruct's default threshold (chosen on single-view validation); None: threshold
    image_threshold: float | None = Field(default=None, gt=0, lt=1)
    categories: list[str] = Field(default_factory=list)
    attributes: list[AttributeSpec] = Field(default_factory=list)
    files: list[FileEntry]
    training: TrainingSummary | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("a file is listed twice")
        roles = [f.role for f in self.files]
        if self.image is not None and self.image.prototypes and "prototypes" not in roles:
            raise ValueError("image.prototypes is set but no file has role 'prototypes'")
        for role in (*ONNX_ROLES, "concepts", "prior", "directions"):
            if roles.count(role) > 1:
                raise ValueError(f"more than one file has role {role!r}")
        if "generator" not in roles:
            raise ValueError("a bundle needs a file with role 'generator'")
        if self.latent.prior == "mixture" and "prior" not in roles:
            raise ValueError("latent.prior is 'mixture' but no file has role 'prior'")
        for role in ("image_encoder", "segmenter", "recognizer"):
            if role in roles and self.image is None:
                raise ValueError(f"a {role} needs the 'image' section (size, normalisation)")
        if ("recognizer" in roles) != ("recognition" in roles):
            raise ValueError("a recognizer and its 'recognition' references come together")
        if "recognizer" in roles and not self.image.recognizer_features:
            raise ValueError("a recognizer needs image.recognizer_features (its output size)")
        return self

    def file(self, role: FileRole) -> FileEntry | None:
        return next((f for f in self.files if f.role == role), None)

    def expected_signature(self, role: str) -> tuple[list[list[int | str]], list[list[int | str]]]:
        """Shapes the contract requires for an ONNX role: (input shapes, output shapes)."""
        z, r = self.latent.size, self.voxel_resolution
        if role == "generator":
            return [["batch", z]], [["batch", 1, r, r, r]]
        if role == "image_encoder":
            s = self.image.size if self.image else 0
            k = self.image.prototypes if self.image else None
            return [["batch", 3, s, s]], [["batch", z], ["batch", z]] + (
                [["batch", k]] if k else []
            )
        if role == "voxel_encoder":
            return [["batch", 1, r, r, r]], [["batch", z], ["batch", z]]
        if role == "generator_gradient":
            return [["batch", z], ["batch", r, r, r]], [["batch", z], ["batch"]]
        if role == "segmenter":
            s = self.image.size if self.image else 0
            return [["batch", 3, s, s]], [["batch", 1, s, s]]
        if role == "recognizer":
            s = self.image.size if self.image else 0
            d = self.image.recognizer_features if self.image else 0
            return [["batch", 3, s, s]], [["batch", d]]
        raise KeyError(role)


# --------------------------------------------------------------------------- errors


class BundleError(Exception):
    """A bundle that must not be served. ``file`` names the offending file (or the manifest)."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


class ManifestError(BundleError):
    pass


class MissingFileError(BundleError):
    pass


class ChecksumError(BundleError):
    pass


class SignatureError(BundleError):
    pass


# --------------------------------------------------------------------------- helpers


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_entry(
    bundle_dir: Path, rel_path: str, role: FileRole, onnx: OnnxSignature | None = None
) -> FileEntry:
    """Describe a file already written into ``bundle_dir`` (hash and size computed here)."""
    p = Path(bundle_dir) / rel_path
    return FileEntry(
        path=rel_path, role=role, sha256=sha256_file(p), size_bytes=p.stat().st_size, onnx=onnx
    )


def write_manifest(bundle_dir: Path, manifest: Manifest) -> Path:
    out = Path(bundle_dir) / MANIFEST_NAME
    out.write_text(manifest.model_dump_json(indent=2) + "\n")
    return out


def load_manifest(bundle_dir: Path) -> Manifest:
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise MissingFileError(MANIFEST_NAME, f"no manifest in {bundle_dir}")
    try:
        return Manifest.model_validate(json.loads(path.read_bytes().decode("utf-8")))
    except UnicodeDecodeError as e:
        raise ManifestError(MANIFEST_NAME, f"not valid UTF-8 text: {e}") from e
    except json.JSONDecodeError as e:
        raise ManifestError(MANIFEST_NAME, f"not valid JSON: {e}") from e
    except ValidationError as e:
        raise ManifestError(MANIFEST_NAME, f"does not match the schema: {e}") from e


_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
}


def read_onnx_signature(path: Path) -> OnnxSignature:
    """The IO signature of an ONNX file as ONNX Runtime sees it."""
    import onnxruntime as ort  # lazy: keeps the contract importable without it

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def spec(a: Any) -> TensorSpec:
        shape = [d if isinstance(d, int) else str(d) for d in a.shape]
        return TensorSpec(name=a.name, shape=shape, dtype=_ORT_DTYPES.get(a.type, a.type))

    return OnnxSignature(
        inputs=[spec(a) for a in sess.get_inputs()], outputs=[spec(a) for a in sess.get_outputs()]
    )


def _same_shape(a: list[int | str], b: list[int | str]) -> bool:
    """Equal ranks; fixed axes equal; a symbolic axis matches any symbolic axis."""
    if len(a) != len(b):
        return False
    return all(
        (isinstance(x, str) and isinstance(y, str)) or x == y for x, y in zip(a, b, strict=True)
    )


def _check_signature(entry: FileEntry, actual: OnnxSignature, manifest: Manifest) -> None:
    declared = entry.onnx
    assert declared is not None  # guaranteed by FileEntry's validator
    want_in, want_out = manifest.expected_signature(entry.role)
    for kind, decl, act, want in (
        ("input", declared.inputs, actual.inputs, want_in),
        ("output", declared.outputs, actual.outputs, want_out),
    ):
        if [t.name for t in decl] != [t.name for t in act]:
            raise SignatureError(
                entry.path,
                f"{kind} names are {[t.name for t in act]} but the manifest declares "
                f"{[t.name for t in decl]}",
            )
        if len(decl) != len(want):
            raise SignatureError(
                entry.path, f"role {entry.role!r} needs {len(want)} {kind}(s), got {len(decl)}"
            )
        for d, a, w in zip(decl, act, want, strict=True):
            if not _same_shape(d.shape, a.shape):
                raise SignatureError(
                    entry.path,
                    f"{kind} {a.name!r} has shape {a.shape} but the manifest declares {d.shape}",
                )
            if d.dtype != a.dtype:
                raise SignatureError(
                    entry.path, f"{kind} {a.name!r} has dtype {a.dtype}, manifest says {d.dtype}"
                )
            if not _same_shape(d.shape, w):
                raise SignatureError(
                    entry.path,
                    f"{kind} {a.name!r} has shape {d.shape}; a {entry.role} for latent size "
                    f"{manifest.latent.size} and resolution {manifest.voxel_resolution} needs {w}",
                )


def verify(bundle_dir: Path | str) -> Manifest:
    """Check a bundle: manifest schema, every file present with its sha256, every ONNX file's IO
    signature against the manifest and the latent size / resolution. Returns the manifest or
    raises a :class:`BundleError` subclass naming the file and the problem."""
    bundle_dir = Path(bundle_dir)
    manifest = load_manifest(bundle_dir)
    for entry in manifest.files:
        path = bundle_dir / entry.path
        if not path.is_file():
            raise MissingFileError(
                entry.path, f"listed in the manifest but missing from {bundle_dir}"
            )
        digest = sha256_file(path)
        if digest != entry.sha256:
            raise ChecksumError(
                entry.path, f"sha256 is {digest} but the manifest pins {entry.sha256}"
            )
        if entry.onnx is not None:
            try:
                actual = read_onnx_signature(path)
            except Exception as e:  # onnxruntime raises its own exception types
                raise SignatureError(entry.path, f"ONNX Runtime cannot load it: {e}") from e
            _check_signature(entry, actual, manifest)
    return manifest
