"""Object families: lamp, mug, car, airplane, boat. Same conventions as ``furniture.py``."""

from __future__ import annotations

import numpy as np

from training.data.shapes.furniture import Parts
from training.data.shapes.sdf import Box, Cylinder, Ellipsoid, Frustum, Primitive, Torus


def lamp(g: np.random.Generator, a: dict) -> Parts:
    base_r, base_t = g.uniform(0.12, 0.18), g.uniform(0.03, 0.05)
    pole_r, arm_len = g.uniform(0.012, 0.02), g.uniform(0.25, 0.35)
    shade_h, shade_r = g.uniform(0.18, 0.26), g.uniform(0.14, 0.2)
    h = a["height"]
    parts: list[Primitive] = []
    if a["round_base"]:
        parts.append(Cylinder((0, base_t / 2, 0), base_r, base_t / 2, "base"))
    else:
        parts.append(Box((0, base_t / 2, 0), (base_r * 0.9, base_t / 2, base_r * 0.9), "base"))
    parts.append(Cylinder((0, h / 2, 0), pole_r, h / 2, "pole"))
    x = 0.0
    if a["bent_arm"]:
        x = arm_len
        parts.append(Cylinder((arm_len / 2, h, 0), pole_r, arm_len / 2, "pole", axis="x"))
    top = h - (0.05 if a["bent_arm"] else -shade_h * 0.35)
    if a["cone_shade"]:
        parts.append(Frustum((x, top, 0), shade_r, shade_r * 0.45, shade_h / 2, "shade"))
    else:
        parts.append(Cylinder((x, top, 0), shade_r * 0.8, shade_h / 2, "shade"))
    return parts, []


def mug(g: np.random.Generator, a: dict) -> Parts:
    r, wall = g.uniform(0.36, 0.46), g.uniform(0.05, 0.08)
    handle_r, handle_t = g.uniform(0.17, 0.23), g.uniform(0.045, 0.06)
    saucer_r = g.uniform(0.7, 0.85)
    h = a["height"]
    y0 = 0.05 if a["has_saucer"] else 0.0
    parts: list[Primitive] = []
    carve: list[Primitive] = []
    if a["tapered"]:
        parts.append(Frustum((0, y0 + h / 2, 0), r * 0.75, r, h / 2, "body"))
        carve.append(Frustum((0, y0 + h / 2 + wall, 0), r * 0.75 - wall, r - wall, h / 2, "body"))
    else:
        parts.append(Cylinder((0, y0 + h / 2, 0), r, h / 2, "body"))
        carve.append(Cylinder((0, y0 + h / 2 + wall, 0), r - wall, h / 2, "body"))
    if a["has_handle"]:
        parts.append(Torus((r, y0 + h / 2, 0), handle_r, handle_t, "handle", axis="z"))
    if a["has_saucer"]:
        parts.append(Cylinder((0, 0.025, 0), saucer_r, 0.025, "saucer"))
    return parts, []


def car(g: np.random.Generator, a: dict) -> Parts:
    length, w = g.uniform(1.9, 2.3), g.uniform(0.85, 1.0)
    wheel_r, body_t = g.uniform(0.15, 0.2), g.uniform(0.3, 0.38)
    cab_h = a["cabin_height"]
    y_body = wheel_r * 0.9
    top = y_body + body_t
    parts: list[Primitive] = [
        Box((0, y_body + body_t / 2, 0), (w / 2, body_t / 2, length / 2), "body")
    ]
    carve: list[Primitive] = []
    if a["pickup_bed"]:  # short cab forward, open cargo bed behind it
        parts.append(
            Box(
                (0, top + cab_h / 2, length * 0.08),
                (w / 2 - 0.04, cab_h / 2, length * 0.17),
                "cabin",
            )
        )
        carve.append(
            Box((0, top, -length * 0.3), (w / 2 - 0.06, body_t * 0.6, length * 0.18), "body")
        )
    else:
        parts.append(
            Box(
                (0, top + cab_h / 2, -length * 0.05),
                (w / 2 - 0.04, cab_h / 2, length * 0.28),
                "cabin",
            )
        )
    for x in (-w / 2 + 0.05, w / 2 - 0.05):
        for z in (-length * 0.32, length * 0.32):
            parts.append(Cylinder((x, wheel_r, z), wheel_r, 0.07, "wheels", axis="x"))
    if a["has_spoiler"]:
        zs = -length / 2 + 0.08
        parts.append(Box((0, top + 0.14, zs), (w / 2 - 0.02, 0.02, 0.08), "spoiler"))
        for x in (-w / 3, w / 3):
            parts.append(Box((x, top + 0.07, zs), (0.02, 0.07, 0.03), "spoiler"))
    return parts, []


def airplane(g: np.random.Generator, a: dict) -> Parts:
    length, fus_r = g.uniform(2.0, 2.4), g.uniform(0.12, 0.16)
    chord, wing_t = g.uniform(0.3, 0.42), g.uniform(0.03, 0.05)
    fin_h, tail_span = g.uniform(0.3, 0.42), g.uniform(0.6, 0.8)
    span = a["wingspan"]
    y = 0.5
    parts: list[Primitive] = [Ellipsoid((0, y, 0), (fus_r, fus_r, length / 2), "fuselage")]
    sweep = 0.18 if a["swept_wings"] else 0.0
    for side in (-1, 1):  # each wing as three chord-wise boxes stepping back with the sweep
        for k in range(3):
            xk = side * span * (k + 0.5) / 6
            parts.append(
                Box(
                    (xk, y, 0.05 - sweep * (k + 0.5) / 3),
                    (span / 12, wing_t / 2, chord / 2),
                    "wings",
                )
            )
    parts.append(Box((0, y, -length * 0.42), (tail_span / 2, wing_t / 2, chord * 0.35), "tail"))
    if a["has_tail_fin"]:
        parts.append(
            Box((0, y + fin_h / 2, -length * 0.42), (0.02, fin_h / 2, chord * 0.4), "tail")
        )
    if a["has_engines"]:
        for side in (-1, 1):
            parts.append(
                Cylinder((side * span * 0.22, y - 0.1, 0.12), 0.06, 0.16, "engines", axis="z")
            )
    return parts, []


def boat(g: np.random.Generator, a: dict) -> Parts:
    """A hull (a straight-sided stern body and a rounded, pointed bow) with, as its attributes
    say, a deckhouse (with a funnel on some), a mast with a sail, cargo stacked on deck."""
    length, depth = g.uniform(2.0, 2.6), g.uniform(0.22, 0.32)
    house_l, house_h = g.uniform(0.3, 0.5), g.uniform(0.18, 0.3)
    mast_h, funnel_r = g.uniform(0.9, 1.3), g.uniform(0.05, 0.08)
    cargo_h, funnel = g.uniform(0.12, 0.2), g.random() < 0.5
    beam = a["beam"] * length
    bow = length * 0.35  # the bow's share of the length
    zb = length / 2 - bow  # where the straight sides end
    parts: list[Primitive] = [
        Box(
            (0, depth / 2, (zb - length / 2) / 2),
            (beam / 2, depth / 2, (zb + length / 2) / 2),
            "hull",
        ),
        Ellipsoid((0, depth / 2, zb), (beam / 2, depth / 2, bow), "hull"),
    ]
    # the stem: a blade along the bow's centreline keeps its point at full depth
    parts.append(Box((0, depth / 2, zb + bow * 0.45), (0.02, depth / 2, bow * 0.45), "hull"))
    z_house = -length / 2 + house_l / 2 + 0.12
    if a["has_deckhouse"]:  # the funnel is nuisance geometry (three binary attributes at most)
        parts.append(
            Box(
                (0, depth + house_h / 2, z_house),
                (beam * 0.42, house_h / 2, house_l / 2),
                "deckhouse",
            )
        )
        parts.append(
            Box(
                (0, depth + house_h + 0.04, z_house + 0.03),
                (beam * 0.32, 0.04, house_l * 0.35),
                "deckhouse",
            )
        )
        if funnel:
            y = depth + house_h + 0.16
            parts.append(Cylinder((0, y, z_house - house_l * 0.2), funnel_r, 0.14, "funnel"))
    if a["has_mast"]:
        zm = zb - 0.1
        parts.append(Cylinder((0, depth + mast_h / 2, zm), 0.018, mast_h / 2, "mast"))
        sail_l = min(length * 0.4, zm - z_house)
        parts.append(
            Box(
                (0, depth + 0.08 + mast_h * 0.42, zm - sail_l / 2),
                (0.012, mast_h * 0.4, sail_l / 2),
                "sail",
            )
        )
    if a["has_cargo"]:  # containers between the deckhouse and the bow
        z0, z1 = z_house + house_l / 2 + 0.06, zb - (0.25 if a["has_mast"] else 0.0)
        n = max(1, int((z1 - z0) / 0.3))
        cl = (z1 - z0) / n
        for i in range(n):
            parts.append(
                Box(
                    (0, depth + cargo_h / 2, z0 + cl * (i + 0.5)),
                    (beam * 0.4, cargo_h / 2, cl / 2 - 0.015),
                    "cargo",
                )
            )
    return parts, []
