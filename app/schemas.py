"""Request bodies, validated before any work (422 -> a 400 problem document in app/errors.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.latents import MAX_SEED
from app.meshing import (
    DEFAULT_JOIN_LEVEL,
    DEFAULT_MIN_PART_FRACTION,
    DEFAULT_SMOOTH_ITERATIONS,
    DEFAULT_UPSAMPLE,
)

MAX_SAMPLES = 16
MAX_KEYFRAMES = 8
MAX_STEPS = 32
MAX_TERMS = 16
MAX_EXEMPLARS = 32
MAX_EDITS = 8
MAX_LATENTS = 256  # latent references (seeds, latents, concepts) one request may resolve
# numbers in one latent: the served bundle's size is checked when it is resolved (app/latents.py);
# this bound only keeps validation's work small (a 3.5-million-item latent once stalled the
# event loop for 49 s, one validation error per item)
MAX_LATENT_SIZE = 1024
# a mean_of tree is counted before it is validated, up to this many leaves (then "more than")
MAX_COUNTED_LEAVES = 4 * MAX_LATENTS
# meshing work one request may ask for, in 32^3 grids: shapes x (upsample x R / 32)^3 (a 32^3
# shape at upsample 2 is 8, a 64^3 shape at upsample 1 is 8 too)
MAX_MESH_WORK = 512
WORK_UNIT_SIDE = 32

Source = Literal["any", "real", "procedural"]  # app.latents.SOURCES: what samples look like
Format = Literal["glb", "obj", "ply", "stl", "npy", "binvox", "json"]  # MESH_ + VOXEL_FORMATS


class _Body(BaseModel):
    # strict: JSON types as the schema declares them (no 0 for false, no "3" for 3)
    model_config = ConfigDict(extra="forbid", strict=True)


class Output(_Body):
    """How shapes come back. Mesh options apply to glb/obj/ply/stl."""

    format: Format = "glb"
    threshold: float | None = Field(default=None, gt=0, lt=1, description="default: the bundle's")
    upsample: int = Field(
        default=DEFAULT_UPSAMPLE,
        ge=1,
        le=4,
        description="blurred upsampling before meshing: finer triangles; parts one voxel thin "
        "thin out or break",
    )
    largest_component: bool = False
    join_level: float = Field(
        default=DEFAULT_JOIN_LEVEL,
        ge=0,
        le=1,
        description="join floating parts to the main part along the likeliest path of voxels "
        "with at least this fraction of the threshold; 1 joins nothing",
    )
    min_part_fraction: float = Field(
        default=DEFAULT_MIN_PART_FRACTION,
        ge=0,
        le=1,
        description="drop floating parts smaller than this fraction of the largest; 0 keeps all",
    )
    smooth_iterations: int = Field(
        default=DEFAULT_SMOOTH_ITERATIONS, ge=0, le=20, description="Taubin smoothing passes"
    )
    target_faces: int | None = Field(default=None, ge=100, le=200_000)
    occupancy: bool = Field(default=False, description="npy: uint8 occupancy, not float32 probs")
    envelope: bool | None = Field(
        default=None,
        description="JSON envelope (base64 payloads + latents); default: only for several shapes",
    )


def count_raw_leaves(refs: list, most: int = MAX_COUNTED_LEAVES) -> int:
    """Leaf references among raw JSON reference objects ``refs`` (a mean_of counts its leaves;
    anything else is one), counted before validation, without recursion, and only up to a
    little past ``most``: it returns ``most`` + 1 or more when there are more."""
    stack, leaves, visited = list(refs[: most + 1]), 0, 0
    while stack and leaves <= most:
        node, visited = stack.pop(), visited + 1
        if visited > 4 * most:  # internal nodes of a tree with few leaves: too large anyway
            return most + 1
        children = node.get("mean_of") if isinstance(node, dict) else None
        if isinstance(children, list) and children:
            stack.extend(children[: most + 1])
        else:
            leaves += 1
    return leaves


def _check_raw_total(refs: list) -> None:
    """The latent limit on the raw body, before a wide mean_of tree is validated (524,288
    leaves once took 3.3 s of the event loop to refuse)."""
    total = count_raw_leaves(refs)
    if total > MAX_LATENTS:
        named = f"more than {MAX_COUNTED_LEAVES}" if total > MAX_COUNTED_LEAVES else str(total)
        raise ValueError(
            f"the request names {named} latents (mean_of leaves included); at most {MAX_LATENTS}"
        )


class LatentRef(_Body):
    """Exactly one of: a seed, a latent, a named concept, or the mean of several exemplars."""

    # the "exactly one" rule in the OpenAPI schema too (validated by _exactly_one below)
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "oneOf": [{"required": [k]} for k in ("seed", "latent", "concept", "mean_of")]
        },
    )

    # not nullable (the one-of rule counts keys): null is refused, as the schema says
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | SkipJsonSchema[None] = None
    latent: Annotated[list[float], Field(max_length=MAX_LATENT_SIZE)] | SkipJsonSchema[None] = None
    concept: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    mean_of: (
        Annotated[list[LatentRef], Field(min_length=1, max_length=MAX_EXEMPLARS)]
        | SkipJsonSchema[None]
    ) = None

    @field_validator("latent", mode="before")
    @classmethod
    def _numbers_only(cls, value: object) -> object:
        """A latent's items, checked in one pass before pydantic validates them: a bad list is
        one problem naming the first bad item, not one problem per item."""
        if isinstance(value, list):
            if len(value) > MAX_LATENT_SIZE:
                raise ValueError(f"{len(value)} numbers; a latent has at most {MAX_LATENT_SIZE}")
            for i, v in enumerate(value):
                if type(v) not in (int, float):  # bool is a subclass of int: not a number here
                    kind = "null" if v is None else type(v).__name__
                    raise ValueError(f"item {i} is {kind}; a latent is a list of numbers")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> LatentRef:
        nulls = sorted(k for k in self.model_fields_set if getattr(self, k) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)}: null is not a value here; leave the key out")
        given = [
            k for k in ("seed", "latent", "concept", "mean_of") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of seed, latent, concept, mean_of"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class SampleRequest(_Body):
    n: int = Field(default=1, ge=1, le=MAX_SAMPLES)
    seeds: list[int] | None = Field(default=None, min_length=1, max_length=MAX_SAMPLES)
    concept: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="sample around this concept's latent",
    )
    temperature: float = Field(default=1.0, gt=0, le=3, description="scale of the prior std")
    source: Source = Field(
        default="any",
        description="what unconditioned samples look like: 'real' draws around the codes of "
        "the real training models (GET /v1/model: sample_sources), 'procedural' from the "
        "procedural families' mixture, 'any' from both by their training shares",
    )
    output: Output = Output()

    @model_validator(mode="after")
    def _seeds_match_n(self) -> SampleRequest:
        if self.seeds is not None:
            if any(not 0 <= s <= MAX_SEED for s in self.seeds):
                raise ValueError("seeds must be in [0, 2^63 - 1]")
            if "n" in self.model_fields_set and self.n != len(self.seeds):
                raise ValueError(f"n is {self.n} but {len(self.seeds)} seeds were given")
            self.n = len(self.seeds)
        check_mesh_work(self.n, self.output)
        return self


class InterpolateRequest(_Body):
    keyframes: list[LatentRef] = Field(min_length=2, max_length=MAX_KEYFRAMES)
    steps: int = Field(default=8, ge=1, le=MAX_STEPS, description="frames per segment")
    method: Literal["slerp", "lerp"] = "slerp"
    output: Output = Output()

    @model_validator(mode="before")
    @classmethod
    def _raw_latent_limit(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("keyframes"), list):
            _check_raw_total(data["keyframes"])
        return data

    @model_validator(mode="after")
    def _frame_limit(self) -> InterpolateRequest:
        _check_total(self.keyframes)
        frames = (len(self.keyframes) - 1) * self.steps + 1
        if frames > MAX_STEPS * 2:
            raise ValueError(f"{frames} frames requested; at most {MAX_STEPS * 2} per request")
        check_mesh_work(frames, self.output)
        return self


def check_mesh_work(shapes: int, output: Output, resolution: int = WORK_UNIT_SIDE) -> None:
    """Refuse requests whose meshes would take too long or too much memory to make: at most
    MAX_MESH_WORK grids of 32^3 to mesh. Checked on the body for a 32^3 grid (before any work),
    and again with the served bundle's resolution before meshing (app/results.py)."""
    if output.format in ("npy", "binvox", "json"):
        return
    work = shapes * (output.upsample * resolution / WORK_UNIT_SIDE) ** 3
    if work > MAX_MESH_WORK:
        raise ValueError(
            f"{shapes} meshes of {resolution}^3 at upsample {output.upsample} is {work:g} units "
            f"of meshing work; at most {MAX_MESH_WORK} (shapes x (upsample x side / 32)^3): "
            "lower upsample or ask for fewer shapes"
        )


def count_refs(ref: LatentRef) -> int:
    """Leaf references under ``ref`` (a mean_of counts its leaves)."""
    if ref.mean_of is None:
        return 1
    return sum(count_refs(r) for r in ref.mean_of)


def _check_total(refs: list[LatentRef]) -> None:
    total = sum(count_refs(r) for r in refs)
    if total > MAX_LATENTS:
        raise ValueError(
            f"the request names {total} latents (mean_of leaves included); at most {MAX_LATENTS}"
        )


class Term(_Body):
    weight: float = Field(ge=-10, le=10)
    ref: LatentRef


class ArithmeticRequest(_Body):
    terms: list[Term] = Field(min_length=1, max_length=MAX_TERMS)
    output: Output = Output()

    @model_validator(mode="before")
    @classmethod
    def _raw_latent_limit(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("terms"), list):
            terms = data["terms"][: MAX_TERMS + 1]  # a longer list is refused anyway
            _check_raw_total([t.get("ref") for t in terms if isinstance(t, dict)])
        return data

    @model_validator(mode="after")
    def _latent_limit(self) -> ArithmeticRequest:
        _check_total([t.ref for t in self.terms])
        return self


class Edit(_Body):
    direction: str = Field(min_length=1, max_length=200, description="a name from /v1/directions")
    amount: float = Field(ge=-10, le=10, description="within the direction's own range")


class EditRequest(_Body):
    start: LatentRef
    edits: list[Edit] = Field(min_length=1, max_length=MAX_EDITS)
    steps: int | None = Field(
        default=None, ge=1, le=MAX_STEPS, description="also return the path: steps + 1 frames"
    )
    output: Output = Output()

    @model_validator(mode="before")
    @classmethod
    def _raw_latent_limit(cls, data: object) -> object:
        if isinstance(data, dict):
            _check_raw_total([data.get("start")])
        return data

    @model_validator(mode="after")
    def _limits(self) -> EditRequest:
        _check_total([self.start])
        check_mesh_work(1 if self.steps is None else self.steps + 1, self.output)
        return self
