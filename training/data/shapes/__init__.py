"""Procedural shape families with named attributes, deterministic by (category, seed).

    make_shape("chair", 7)                        -> Shape with sampled attributes
    make_shape("chair", 7, has_armrests=False)    -> the same chair without armrests

Attribute values are drawn from one random stream and nuisance geometry from another, so an
override changes only what that attribute owns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from training.data.shapes import furniture, objects
from training.data.shapes.sdf import Shape


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: Literal["binary", "discrete", "continuous"]
    low: float = 0.0  # discrete: inclusive integer range; continuous: uniform range
    high: float = 1.0

    def sample(self, rng: np.random.Generator) -> float:
        if self.kind == "binary":
            return float(rng.random() < 0.5)
        if self.kind == "discrete":
            return float(rng.integers(int(self.low), int(self.high) + 1))
        return float(rng.uniform(self.low, self.high))


def _b(name: str) -> Attribute:
    return Attribute(name, "binary")


@dataclass(frozen=True)
class Category:
    name: str
    build: Callable[[np.random.Generator, dict], tuple[list, list]]
    attributes: tuple[Attribute, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("chair", furniture.chair, (
        _b("has_armrests"), _b("tall_back"), _b("pedestal_base"),
        Attribute("seat_height", "continuous", 0.40, 0.55))),
    Category("table", furniture.table, (
        _b("round_top"), _b("pedestal_base"), _b("has_shelf"),
        Attribute("height", "continuous", 0.45, 0.8))),
    Category("sofa", furniture.sofa, (
        _b("has_armrests"), _b("has_legs"), Attribute("seats", "discrete", 1, 3),
        Attribute("back_height", "continuous", 0.3, 0.5))),
    Category("bed", furniture.bed, (
        _b("has_headboard"), _b("has_footboard"), _b("bunk"),
        Attribute("width", "continuous", 0.9, 1.7))),
    Category("shelf", furniture.shelf, (
        _b("has_doors"), _b("has_legs"), Attribute("n_shelves", "discrete", 2, 5),
        Attribute("width", "continuous", 0.6, 1.4))),
    Category("lamp", objects.lamp, (
        _b("round_base"), _b("bent_arm"), _b("cone_shade"),
        Attribute("height", "continuous", 0.9, 1.6))),
    Category("mug", objects.mug, (
        _b("has_handle"), _b("tapered"), _b("has_saucer"),
        Attribute("height", "continuous", 0.5, 1.0))),
    Category("car", objects.car, (
        _b("has_spoiler"), _b("pickup_bed"), Attribute("cabin_height", "continuous", 0.22, 0.4))),
    Category("airplane", objects.airplane, (
        _b("swept_wings"), _b("has_tail_fin"), _b("has_engines"),
        Attribute("wingspan", "continuous", 1.6, 2.4))),
    # added with real data version 3 (appended: every earlier category keeps its index, so its
    # shapes and their seeds)
    Category("cabinet", furniture.cabinet, (
        _b("has_drawers"), _b("has_legs"), Attribute("height", "continuous", 0.7, 2.0),
        Attribute("width", "continuous", 0.45, 1.6))),
    Category("boat", objects.boat, (
        _b("has_deckhouse"), _b("has_mast"), _b("has_cargo"),
        Attribute("beam", "continuous", 0.14, 0.3))),
)  # fmt: skip
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
_BY_NAME = {c.name: c for c in CATEGORIES}


def category(name: str) -> Category:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown category {name!r}; known: {', '.join(CATEGORY_NAMES)}") from None


def all_attributes() -> list[tuple[str, str, list[str]]]:
    """(name, kind, categories carrying it), in a stable order."""
    out: dict[str, tuple[str, list[str]]] = {}
    for c in CATEGORIES:
        for a in c.attributes:
            out.setdefault(a.name, (a.kind, []))[1].append(c.name)
    return [(n, k, cats) for n, (k, cats) in out.items()]


def make_shape(name: str, seed: int, **overrides: float) -> Shape:
    """The shape fully determined by (category, seed), with optional attribute overrides."""
    cat = category(name)
    idx = CATEGORY_NAMES.index(name)
    attr_rng = np.random.default_rng([idx, seed, 0])
    attrs = {a.name: a.sample(attr_rng) for a in cat.attributes}
    unknown = set(overrides) - set(attrs)
    if unknown:
        raise KeyError(f"{name} has no attribute(s) {sorted(unknown)}; it has {sorted(attrs)}")
    attrs.update({k: float(v) for k, v in overrides.items()})
    parts, carve = cat.build(np.random.default_rng([idx, seed, 1]), attrs)
    return Shape(name, seed, attrs, tuple(parts), tuple(carve))
