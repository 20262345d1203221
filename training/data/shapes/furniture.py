"""Furniture families: chair, table, sofa, bed, shelf, cabinet. Build frame: metres, y up, +z front.

Each builder takes ``g`` (a numpy Generator for nuisance geometry) and ``a`` (the attribute
values) and returns (parts, carve). Every builder draws all its random numbers first, in a fixed
order, so toggling an attribute changes only the geometry that attribute owns.
"""

from __future__ import annotations

import numpy as np

from training.data.shapes.sdf import Box, Cylinder, Primitive

Parts = tuple[list[Primitive], list[Primitive]]


def _legs(w: float, d: float, h: float, s: float, part: str = "legs", y0: float = 0.0) -> list:
    """Four square legs of side ``s`` under a w x d footprint, from y0 to h."""
    hx, hz = w / 2 - s / 2, d / 2 - s / 2
    return [
        Box((x, (y0 + h) / 2, z), (s / 2, (h - y0) / 2, s / 2), part)
        for x in (-hx, hx)
        for z in (-hz, hz)
    ]


def chair(g: np.random.Generator, a: dict) -> Parts:
    w, d = g.uniform(0.42, 0.56), g.uniform(0.40, 0.50)
    t, leg = g.uniform(0.04, 0.07), g.uniform(0.035, 0.055)
    back_t = g.uniform(0.035, 0.06)
    back_h = g.uniform(0.50, 0.65) if a["tall_back"] else g.uniform(0.22, 0.30)
    arm_h, arm_w = g.uniform(0.18, 0.26), g.uniform(0.04, 0.06)
    h = a["seat_height"]
    parts: list[Primitive] = [Box((0, h - t / 2, 0), (w / 2, t / 2, d / 2), "seat")]
    parts.append(
        Box((0, h + back_h / 2, -d / 2 + back_t / 2), (w / 2, back_h / 2, back_t / 2), "back")
    )
    if a["pedestal_base"]:
        parts.append(Cylinder((0, (h - t) / 2, 0), 0.035, (h - t) / 2, "legs"))
        parts.append(Box((0, 0.025, 0), (w * 0.55, 0.025, 0.03), "legs"))
        parts.append(Box((0, 0.025, 0), (0.03, 0.025, d * 0.55), "legs"))
    else:
        parts += _legs(w, d, h - t, leg)
    if a["has_armrests"]:
        for x in (-(w / 2 - arm_w / 2), w / 2 - arm_w / 2):
            parts.append(Box((x, h + arm_h, 0), (arm_w / 2, 0.02, d / 2), "arms"))
            parts.append(
                Box((x, h + arm_h / 2, d / 2 - 0.03), (arm_w / 2, arm_h / 2, 0.02), "arms")
            )
    return parts, []


def table(g: np.random.Generator, a: dict) -> Parts:
    w, d = g.uniform(0.9, 1.5), g.uniform(0.6, 0.9)
    r = g.uniform(0.45, 0.65)
    t, leg = g.uniform(0.03, 0.06), g.uniform(0.04, 0.07)
    h = a["height"]
    parts: list[Primitive] = []
    if a["round_top"]:
        parts.append(Cylinder((0, h - t / 2, 0), r, t / 2, "top"))
        w = d = r * 1.41  # legs sit on the inscribed square
    else:
        parts.append(Box((0, h - t / 2, 0), (w / 2, t / 2, d / 2), "top"))
    if a["pedestal_base"]:
        parts.append(Cylinder((0, h / 2, 0), 0.05, h / 2, "legs"))
        parts.append(Cylinder((0, 0.02, 0), min(w, d) * 0.35, 0.02, "legs"))
    else:
        parts += _legs(w * 0.92, d * 0.92, h - t, leg)
    if a["has_shelf"]:
        parts.append(Box((0, h * 0.22, 0), (w * 0.42, 0.015, d * 0.42), "shelf"))
    return parts, []


def sofa(g: np.random.Generator, a: dict) -> Parts:
    d, seat_h = g.uniform(0.75, 0.95), g.uniform(0.38, 0.46)
    back_t, arm_w = g.uniform(0.15, 0.25), g.uniform(0.12, 0.2)
    arm_h = g.uniform(0.55, 0.68)
    cushion = g.uniform(0.06, 0.1)
    w = 0.65 * a["seats"] + 0.2
    back_h = a["back_height"]
    y0 = 0.12 if a["has_legs"] else 0.0
    parts: list[Primitive] = [
        Box((0, (y0 + seat_h) / 2, 0), (w / 2, (seat_h - y0) / 2, d / 2), "base"),
        Box(
            (0, seat_h + cushion / 2, back_t / 2),
            (w / 2 - 0.02, cushion / 2, d / 2 - back_t / 2),
            "cushion",
        ),
        Box(
            (0, (y0 + seat_h + back_h) / 2, -d / 2 + back_t / 2),
            (w / 2, (seat_h + back_h - y0) / 2, back_t / 2),
            "back",
        ),
    ]
    if a["has_armrests"]:
        for x in (-(w / 2 + arm_w / 2), w / 2 + arm_w / 2):
            parts.append(
                Box((x, (y0 + arm_h) / 2, 0), (arm_w / 2, (arm_h - y0) / 2, d / 2), "arms")
            )
    if a["has_legs"]:
        ww = w + (2 * arm_w if a["has_armrests"] else 0)
        parts += _legs(ww - 0.05, d - 0.05, y0, 0.06)
    return parts, []


def bed(g: np.random.Generator, a: dict) -> Parts:
    length, frame_top = g.uniform(1.9, 2.1), g.uniform(0.32, 0.4)
    mat_t, board_t = g.uniform(0.14, 0.22), g.uniform(0.05, 0.08)
    head_h, foot_h = g.uniform(0.9, 1.15), g.uniform(0.5, 0.65)
    w = a["width"]
    parts: list[Primitive] = [
        Box((0, (0.12 + frame_top) / 2, 0), (w / 2, (frame_top - 0.12) / 2, length / 2), "frame"),
        Box(
            (0, frame_top + mat_t / 2, 0), (w / 2 - 0.03, mat_t / 2, length / 2 - 0.03), "mattress"
        ),
    ]
    parts += _legs(w, length, 0.12, 0.07, part="frame")
    post_h = 1.75 if a["bunk"] else 0.0
    if a["bunk"]:
        parts.append(Box((0, 1.15, 0), (w / 2, 0.07, length / 2), "frame"))
        parts.append(
            Box((0, 1.22 + mat_t / 2, 0), (w / 2 - 0.03, mat_t / 2, length / 2 - 0.03), "mattress")
        )
        parts += _legs(w + 0.1, length + 0.1, post_h, 0.06, part="frame")
    if a["has_headboard"]:
        hb = max(head_h, post_h)
        parts.append(
            Box((0, hb / 2, -length / 2 - board_t / 2), (w / 2, hb / 2, board_t / 2), "boards")
        )
    if a["has_footboard"]:
        parts.append(
            Box(
                (0, foot_h / 2, length / 2 + board_t / 2),
                (w / 2, foot_h / 2, board_t / 2),
                "boards",
            )
        )
    return parts, []


def shelf(g: np.random.Generator, a: dict) -> Parts:
    h, d = g.uniform(1.1, 1.8), g.uniform(0.3, 0.42)
    t = g.uniform(0.025, 0.04)
    w = a["width"]
    n = int(a["n_shelves"])
    y0 = 0.12 if a["has_legs"] else 0.0
    parts: list[Primitive] = [
        Box((-w / 2 + t / 2, (y0 + h) / 2, 0), (t / 2, (h - y0) / 2, d / 2), "carcass"),
        Box((w / 2 - t / 2, (y0 + h) / 2, 0), (t / 2, (h - y0) / 2, d / 2), "carcass"),
        Box((0, (y0 + h) / 2, -d / 2 + 0.01), (w / 2, (h - y0) / 2, 0.01), "carcass"),
    ]
    for i in range(n + 1):  # bottom board, n - 1 inner shelves, top board
        y = y0 + t / 2 + i * (h - y0 - t) / n
        parts.append(Box((0, y, 0), (w / 2, t / 2, d / 2), "boards"))
    if a["has_doors"]:  # a closed cabinet: its enclosed interior is solid, like its panels
        parts.append(Box((0, (y0 + h) / 2, 0.005), (w / 2, (h - y0) / 2, d / 2 + 0.005), "doors"))
    if a["has_legs"]:
        parts += _legs(w, d, y0, 0.05)
    return parts, []


def cabinet(g: np.random.Generator, a: dict) -> Parts:
    """A closed carcass (sideboard, chest of drawers, wardrobe): drawer fronts or doors standing
    proud of its front, a handle on each, on legs or on a plinth."""
    d, t = g.uniform(0.4, 0.6), g.uniform(0.02, 0.03)
    plinth_h, leg_h = g.uniform(0.06, 0.1), g.uniform(0.12, 0.2)
    top_over = g.uniform(0.0, 0.03)
    w, h = a["width"], a["height"]
    y0 = leg_h if a["has_legs"] else plinth_h
    parts: list[Primitive] = [
        Box((0, (y0 + h) / 2, 0), (w / 2, (h - y0) / 2, d / 2), "carcass"),
        Box((0, h + t / 2, top_over / 2), (w / 2 + top_over, t / 2, d / 2 + top_over), "top"),
    ]
    if a["has_legs"]:
        parts += _legs(w - 0.04, d - 0.04, y0, 0.045)
    else:
        parts.append(
            Box((0, plinth_h / 2, 0.02), (w / 2 - 0.02, plinth_h / 2, d / 2 - 0.04), "carcass")
        )
    front = d / 2 + 0.012
    if a["has_drawers"]:  # a column of drawers per 0.6 m of width, rows of about 0.2 m
        cols, rows = max(1, round(w / 0.6)), max(2, round((h - y0) / 0.22))
        cw, rh = w / cols, (h - y0) / rows
        for i in range(cols):
            for j in range(rows):
                x, y = -w / 2 + cw * (i + 0.5), y0 + rh * (j + 0.5)
                parts.append(Box((x, y, front), (cw / 2 - 0.012, rh / 2 - 0.012, 0.012), "fronts"))
                parts.append(
                    Box((x, y + rh * 0.15, front + 0.03), (cw * 0.2, 0.015, 0.02), "handles")
                )
    else:  # one door per 0.5 m of width, the handles beside the meeting edges
        n = max(1, round(w / 0.5))
        dw = w / n
        for i in range(n):
            x = -w / 2 + dw * (i + 0.5)
            parts.append(
                Box(
                    (x, (y0 + h) / 2, front), (dw / 2 - 0.01, (h - y0) / 2 - 0.012, 0.012), "fronts"
                )
            )
            hx = x + (dw / 2 - 0.06) * (1 if i % 2 == 0 else -1) * (1 if n > 1 else 0)
            parts.append(
                Box(
                    (hx, y0 + (h - y0) * 0.55, front + 0.025),
                    (0.012, min(0.12, (h - y0) * 0.15), 0.015),
                    "handles",
                )
            )
    return parts, []
