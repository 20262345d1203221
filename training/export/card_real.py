"""The model card's sections on the real models: where they come from and whose they are
(with the credits their licences ask for), and the figures measured on them."""

from __future__ import annotations

from app.images import SEGMENT_PASSES


def pct(x: float) -> str:
    """0.123 -> '12.3%' (the card's percentages; card.py uses it too)."""
    return f"{100 * x:.1f}%"


# licences whose models the model card credits by creator
ATTRIBUTION_LICENCES = ("Attribution", "Free Art License")

REAL_TARGETS = {  # issue "Real objects", on the real test split
    "plain": ("single-view, white/plain background: IoU / category", ">= 0.50 / >= 85%"),
    "photo": ("single-view, photographic background: IoU / category", ">= 0.40 / >= 75%"),
}


def real_data_lines(manifest: dict | None, cfg) -> list[str]:
    """Sources, counts, licences and the credits (CC-BY, Free Art) of the real models."""
    if not manifest:
        return []
    models = manifest["models"]
    by_pkg: dict[str, set[str]] = {}
    for m in models:
        by_pkg.setdefault(m["package"], set()).add(m["licence"])
    counts = {s: sum(c.values()) for s, c in manifest["counts"].items()}
    left_out = manifest.get("left_out", {})  # from real data version 3
    left = (
        f" and leaving out {len(left_out)} files that are not objects (an aircraft's lights, "
        "stores and loose parts, balloons)"
        if left_out
        else ""
    )
    lines = [
        f"Real models ({len(models)} after dropping {len(manifest['duplicates_dropped'])} "
        f"near-duplicates{left}; train/val/test "
        f"{counts['train']}/{counts['val']}/{counts['test']}, split by model), "
        f"{int(100 * cfg.real_fraction)}% of every training batch, from Debian "
        "packages, labelled from their catalogues, in the canonical frame, voxelised solid, with",
        "photo-like renders (pyrender on OSMesa, the models' own materials, random light and",
        "view, backgrounds from the packages' textures; the test renders use photographs from",
        "mate-backgrounds that training never sees):",
        "",
        "| package | models | licences |",
        "|---|---|---|",
    ]
    for pkg, licences in sorted(by_pkg.items()):
        n = sum(1 for m in models if m["package"] == pkg)
        lines.append(f"| {pkg} | {n} | {'; '.join(sorted(licences))} |")
    credited: dict[str, list[str]] = {}
    for m in models:
        if any(k in m["licence"] for k in ATTRIBUTION_LICENCES):
            credited.setdefault(m["creator"], []).append(m["name"])
    lines += [
        "",
        "Per-category counts: "
        + "; ".join(
            f"{c} {manifest['counts']['train'][c]}/{manifest['counts']['val'][c]}/"
            f"{manifest['counts']['test'][c]}"
            for c in manifest["counts"]["train"]
        ),
        "",
        "Credits (the models whose licences ask for attribution: Creative Commons Attribution "
        "and the Free Art License 1.3, a copyleft licence, from the sweethome3d-furniture "
        "packages, and Creative Commons Attribution-ShareAlike 4.0 from minetest-mod-homedecor, "
        "whose ShareAlike term asks that adaptations be shared under the same licence; by "
        "creator): "
        + "; ".join(
            f"{who} ({', '.join(sorted(set(names)))})" for who, names in sorted(credited.items())
        )
        + ". Full provenance of every model (package, file, creator, licence, split) is in the "
        "dataset's `real_manifest.json`, written by `python -m training data --source real`.",
        "",
    ]
    return lines


def real_metric_lines(metrics: dict) -> list[str]:
    real = metrics.get("real")
    if not real:
        return []
    rec, pieces = real["reconstruction"], real["samples"]
    gen, arith = real["generation_vs_real_test"], metrics.get("readme_arithmetic", {})
    rows = [
        f"| {label} | {target} | {rec[k]['iou']:.3f} / {pct(rec[k]['category_accuracy'])} "
        f"({rec[k]['renders']} renders) |"
        for k, (label, target) in REAL_TARGETS.items()
    ]
    if "photo_wide" in rec:
        w = rec["photo_wide"]
        rows.append(
            "| single-view, a wide photograph nobody cropped (the object spans a sixth to a third "
            f"of its side): IoU / category | | {w['iou']:.3f} / {pct(w['category_accuracy'])} "
            f"({w['renders']} photos; with one segmenter look instead of up to "
            f"{SEGMENT_PASSES}: {w['iou_one_look']:.3f} / "
            f"{pct(w['category_accuracy_one_look'])}) |"
        )
    if "single_piece_mesh" in rec["plain"]:
        rows.append(
            "| single-view answers whose default GLB mesh is one piece: white/plain, photographic "
            f"| | {pct(rec['plain']['single_piece_mesh'])}, "
            f"{pct(rec['photo']['single_piece_mesh'])} |"
        )
    if "guess_accuracy" in rec["plain"]:
        rows.append(
            "| the encoder's own category guess (`X-Gan3d-Category`) right: white/plain, "
            f"photographic | | {pct(rec['plain']['guess_accuracy'])}, "
            f"{pct(rec['photo']['guess_accuracy'])} (stated probability on average "
            f"{rec['plain']['guess_mean_probability']:.2f}, "
            f"{rec['photo']['guess_mean_probability']:.2f}) |"
        )
    if "iou_with_category_hint" in rec["plain"]:
        rows.append(
            "| single-view with the true category named (`category` hint): IoU white/plain, "
            f"photographic | | {rec['plain']['iou_with_category_hint']:.3f}, "
            f"{rec['photo']['iou_with_category_hint']:.3f} |"
        )
    if "iou_all_prototypes" in rec["plain"]:
        rows.append(
            "| single-view blending every prototype (`category=any`, the default before 3.5): "
            f"IoU white/plain, photographic | | {rec['plain']['iou_all_prototypes']:.3f}, "
            f"{rec['photo']['iou_all_prototypes']:.3f} |"
        )
    rows += [
        f"| real mesh -> voxel encoder -> decode: IoU | >= 0.80 | {_round_trip(real)} |",
        f"| random samples in one piece after the default clean-up | >= 95% | "
        f"{pct(pieces['single_piece_after_cleanup'])}{_mesh_pieces(pieces)} (raw "
        f"{pct(pieces['single_piece_raw'])}, {pieces['mean_parts_raw']:.2f} parts on average) |",
        f"| generation 1-NNA vs real test shapes (1 - IoU) | <= 65% | {pct(gen['one_nna'])} "
        f"(COV {pct(gen['cov'])}, MMD {gen['mmd']:.3f}) |",
    ]
    src = real.get("source_real")
    if src:
        g_r, p_r = src["generation_vs_real_test"], src["samples"]
        rows.append(
            "| same, `source: real` samples (kernels around the real train models' codes): "
            f"1-NNA; in one piece | <= 65%; >= 95% | {pct(g_r['one_nna'])} (COV "
            f"{pct(g_r['cov'])}, MMD {g_r['mmd']:.3f}); "
            f"{pct(p_r['single_piece_after_cleanup'])}{_mesh_pieces(p_r)} |"
        )
        if "nearest_train_iou" in src:
            rows.append(
                "| `source: real` samples: IoU with the nearest real train model (a real test "
                f"model's own) | | {src['nearest_train_iou']:.3f} "
                f"({src['test_nearest_train_iou']:.3f}) |"
            )
    if arith.get("exemplars"):
        rows.append(
            f"| README arithmetic: sofa without armrests + (chair with - chair without) | "
            f">= 80% armrests | {pct(arith['armrests_present'])} (still a sofa "
            f"{pct(arith['still_sofa'])}, {arith['exemplars']} test sofas) |"
        )
    return [
        f"## Metrics (real test split: {real['models']} models, {real['renders_per_model']} "
        "held-out renders each)",
        "",
        "| metric | target | measured |",
        "|---|---|---|",
        *rows,
        "",
        "Per-category single-view IoU, white/plain backgrounds: "
        + ", ".join(f"{c} {v:.2f}" for c, v in rec["plain"]["per_category_iou"].items())
        + "; mesh round trip, one-shot: "
        + ", ".join(f"{c} {v:.2f}" for c, v in real["mesh_round_trip_per_category"].items())
        + (
            "; fitted (`/v1/encode` default): "
            + ", ".join(
                f"{c} {v:.2f}" for c, v in real["mesh_round_trip_per_category_fitted"].items()
            )
            if "mesh_round_trip_per_category_fitted" in real
            else ""
        )
        + f". The judge's own category accuracy on the real test voxels: "
        f"{pct(real['judge_category_accuracy_on_real_test'])}.",
        "",
    ]


def _round_trip(real: dict) -> str:
    """The mesh round trip's cell: one-shot, then as /v1/encode answers by default."""
    out = f"{real['mesh_round_trip_iou']:.3f}"
    if "mesh_round_trip_iou_refined" not in real:
        return out
    out += (
        f" one-shot; **{real['mesh_round_trip_iou_refined']:.3f}** fitted with "
        f"{real['refine_steps']} {real.get('refine_method', 'fixed-point')} steps "
        "(`/v1/encode` default)"
    )
    by_steps = real.get("mesh_round_trip_iou_by_fit_steps", {})
    if by_steps:
        out += " (" + ", ".join(f"{v:.3f} after {k}" for k, v in by_steps.items()) + ")"
    return out


def _mesh_pieces(pieces: dict) -> str:
    """'; the default GLB mesh x%' where the evaluation counted the meshes' surfaces (3.10.1 on)."""
    mesh = pieces.get("single_piece_mesh")
    return "" if mesh is None else f"; the default GLB mesh {pct(mesh)}"
