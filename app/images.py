"""Uploaded photo -> the image encoder's input, with Pillow and scipy only (no model download).

1. decode: PNG / JPEG / WebP only, pixel limit checked from the header before decoding,
   truncated or garbage files rejected, EXIF orientation applied; a photo larger than
   WORK_SIDE is reduced to it at once (JPEGs are decoded at a reduced scale), so that what
   follows works on at most about a megapixel whatever the upload;
2. find the object: the alpha channel when there is one, otherwise (when the image border is
   nearly uniform) pixels that differ from the border colour, without specks of noise; with
   busy surroundings the whole frame, as in training, unless the bundle has a segmenter: the
   service then asks it where the object is, again at the square around what it found while
   that is much smaller than the frame (:func:`find_object`), and :func:`cut_out` makes that
   the alpha channel. With a segmenter, the colour rule's mask is also checked against its
   mask, and the segmenter decides where they disagree;
3. crop a square around it so that it fills TARGET_FILL of the side, as in the training renders
   (measured: the object's bounding box spans 0.57-0.83 of the frame, median 0.69), resize;
4. normalise per the manifest: (pixel / 255 - mean) / std, NCHW.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from app.bundle import ImageSpec

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
# longest side photos are worked on at: the encoder sees 64-128 px, and an object a sixth of a
# wide photo's side is still ~170 px here. Full size, a 16-megapixel upload cost ~700 MB of
# float32 copies while its object was found (8 at once: +5.6 GB)
WORK_SIDE = 1024
TARGET_FILL = 0.72
MAX_ASPECT = 8  # longest side / shortest side: long thin strips are refused (400)
BG_DISTANCE = 40.0  # RGB distance from the border colour that counts as object
BORDER_UNIFORMITY = 20.0  # border colour std above which the background is not modelled
# parts of the object mask smaller than this fraction of its largest part are noise; thin legs
# and parts apart from the object stay in it, so that the crop frames the whole object as the
# training renders do (docs/model_history.md: the mask clean-up, 3.8 -> 3.9)
MIN_PART_OF_LARGEST = 0.1
MIN_OBJECT, MAX_OBJECT = 0.002, 0.95  # share of the image an object mask may cover
ALPHA_BACKGROUND = (128, 128, 128)  # transparent pixels become plain grey (seen in training)
# segmenter runs on a busy photo (find_object): the whole frame, then the square around what it
# found while that square's side is under REFINE_BELOW of the last one's. Measured with 3.9.1's
# networks on wide photographs of the real val models (the object 16-37% of the frame's side;
# training/data/real_set.py wide_photos): one look IoU 0.237, category 43%; two 0.270 / 52%; three
# 0.273 / 53% (0.6 instead of 0.8: 0.260). On the framed val photographs, where the first
# square is the object's, the answer stays (0.363 -> 0.359, SE 0.004).
SEGMENT_PASSES = 3
REFINE_BELOW = 0.8
# the colour rule trusts a nearly uniform border; a striped curtain, or a white object on white,
# fools it. With a segmenter, find_object compares the two masks in the colour rule's crop: when
# they overlap (IoU) by less than AGREE, the photo is treated as a busy one. Measured with
# 3.10.0 on the real validation renders (IoU / category): white/plain 0.397 / 79.3% -> 0.397 /
# 80.0%, photographs 0.361 / 74.3% -> 0.375 / 75.7%, wide photos 0.275 / 55.0% -> 0.290 /
# 58.6% (11% of framed renders switch; at 0.3: plain 0.401, photographs 0.376, wide 0.284; at
# 0.7: 0.394, 0.379, 0.297)
AGREE = 0.5
# an image whose every pixel lies within this many levels (0-255, per channel) of every other is
# one flat colour: no object to reconstruct (400). JPEG keeps a flat image flat (spread 0 at
# qualities 30-95); the margin is for a near-blank scan or screenshot
BLANK_RANGE = 8


class ImageInputError(ValueError):
    """An upload that is not a usable image; the message says why."""


def _clean(e: Exception) -> str:
    """Pillow's message without object reprs (they show heap addresses)."""
    return re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the upload", str(e))


def decode(data: bytes, *, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise ImageInputError(
                    f"image format {img.format} is not accepted; send PNG, JPEG or WebP"
                )
            w, h = img.size
            if max(w, h) > MAX_ASPECT * min(w, h):
                raise ImageInputError(
                    f"the image is {w}x{h} pixels; sides may differ by at most {MAX_ASPECT}:1"
                )
            if w * h > max_pixels:
                raise ImageInputError(
                    f"the image has {w}x{h} pixels; the limit is {max_pixels} pixels"
                )
            if img.format == "JPEG":
                img.draft(None, (WORK_SIDE, WORK_SIDE))  # DCT scaling: at least WORK_SIDE
            img.load()
            if max(img.size) > WORK_SIDE:
                img.thumbnail((WORK_SIDE, WORK_SIDE), Image.LANCZOS, reducing_gap=3.0)
    except ImageInputError:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as e:
        raise ImageInputError(f"not a readable PNG, JPEG or WebP image ({_clean(e)})") from e
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise ImageInputError(f"the image data is truncated or corrupt ({_clean(e)})") from e
    return ImageOps.exif_transpose(img)


def object_mask(img: Image.Image) -> tuple[np.ndarray, str]:
    """-> (mask [H, W] bool, how it was found: "alpha" | "background" | "none"). Raises
    ImageInputError for an image with nothing in it: every pixel transparent, or one flat colour
    (the encoder would still answer, with a made-up shape)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        mask = alpha > 127
        if not mask.any():
            raise ImageInputError("every pixel of the image is transparent: no object to see")
        if mask.mean() < 1:
            return mask, "alpha"
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    if border.std(axis=0).mean() > BORDER_UNIFORMITY:
        # textured or cluttered surroundings: no reliable background model; the encoder was
        # trained on such uncropped frames, so the whole image is used as it is
        return np.ones(rgb.shape[:2], bool), "none"
    bg = np.median(border, axis=0)
    mask = np.linalg.norm(rgb - bg, axis=-1) > BG_DISTANCE
    # the object is every 8-connected part of at least MIN_PART_OF_LARGEST of the largest
    # part: specks of noise go, thin legs and parts the outline shows apart stay (no opening)
    mask = _without_specks(mask)
    if not MIN_OBJECT < mask.mean() < MAX_OBJECT:
        # a flat image always ends here (uniform border, nothing off it): checked only here,
        # since the check is one more pass over the image (0.6 s at 12 megapixels)
        spread = (rgb.max(axis=(0, 1)) - rgb.min(axis=(0, 1))).max()
        if spread <= BLANK_RANGE:
            raise ImageInputError(
                f"the image is one flat colour (its pixels differ by at most {spread:.0f} of "
                "255 levels): no object to see"
            )
        return np.ones(mask.shape, bool), "none"
    return ndimage.binary_fill_holes(mask), "background"


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """[H, W] bool -> the 8-connected parts of at least MIN_PART_OF_LARGEST of the largest."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return np.isin(labels, 1 + np.nonzero(sizes >= MIN_PART_OF_LARGEST * sizes.max())[0])


def _segmenter_mask(prob: np.ndarray) -> np.ndarray:
    """[S, S] object probability -> the cleaned mask [S, S] bool, at the segmenter's resolution
    (a 12-megapixel photo took 1.1 s at its own)."""
    return ndimage.binary_fill_holes(_without_specks(prob >= 0.5))


def cut_out(img: Image.Image, prob: np.ndarray, crop_box: list[int]) -> Image.Image | None:
    """A photo whose object :func:`object_mask` could not find (source "none"), and the
    segmenter's object probability [S, S] over :func:`preprocess`'s crop of it (``crop_box``,
    image pixels) -> the photo as RGBA with that mask as alpha, which :func:`preprocess` then
    frames like any cut-out; None when the mask is implausible (next to nothing, or all)."""
    x0, y0, x1, _ = crop_box
    s = prob.shape[0]
    small = _segmenter_mask(prob).astype(np.uint8) * 255
    # then read onto the image's own pixel grid (PIL: EXTENT is in source pixels)
    extent = tuple(v * s / (x1 - x0) for v in (-x0, -y0, img.width - x0, img.height - y0))
    alpha = Image.fromarray(small).transform(img.size, Image.EXTENT, extent, Image.BILINEAR)
    alpha = alpha.point(lambda v: 255 if v >= 128 else 0)
    if not MIN_OBJECT < np.asarray(alpha).mean() / 255 < MAX_OBJECT:
        return None
    out = img.convert("RGBA")
    out.putalpha(alpha)
    return out


def _crop_resized(
    rgb: Image.Image, box: tuple[int, ...], size: int, fill: int | tuple[int, ...]
) -> Image.Image:
    """The square ``box`` (it may reach past the image, which is then ``fill``) resized to
    size x size, in the image's mode. Only the part inside the image is resized, so memory
    follows the image and the output, never the box (a 30000 x 1 image once cost a 30000^2
    canvas)."""
    scale = size / (box[2] - box[0])
    inner = (max(box[0], 0), max(box[1], 0), min(box[2], rgb.width), min(box[3], rgb.height))
    out = Image.new(rgb.mode, (size, size), fill)
    if inner[2] <= inner[0] or inner[3] <= inner[1]:
        return out
    w = max(1, round((inner[2] - inner[0]) * scale))
    h = max(1, round((inner[3] - inner[1]) * scale))
    part = rgb.crop(inner).resize((w, h), Image.LANCZOS)
    out.paste(part, (round((inner[0] - box[0]) * scale), round((inner[1] - box[1]) * scale)))
    return out


def preprocess(img: Image.Image, spec: ImageSpec) -> tuple[np.ndarray, dict]:
    """-> ([3, S, S] float32 normalised, info about the crop)."""
    x, info, _ = _preprocess(img, spec)
    return x, info


def _preprocess(img: Image.Image, spec: ImageSpec) -> tuple[np.ndarray, dict, np.ndarray]:
    """:func:`preprocess`, and the object mask it framed [H, W] bool."""
    mask, source = object_mask(img)
    if source == "alpha":
        base = Image.new("RGB", img.size, ALPHA_BACKGROUND)
        base.paste(img.convert("RGB"), mask=img.convert("RGBA").getchannel("A"))
        rgb = base
    else:
        rgb = img.convert("RGB")
    ys, xs = np.nonzero(mask)
    box = _square_box(xs.min(), xs.max() + 1, ys.min(), ys.max() + 1, source != "none")
    info = {"mask_source": source, "crop_box": box, "size": list(img.size)}
    return _to_input(rgb, box, spec), info, mask


def _square_box(x0: float, x1: float, y0: float, y1: float, framed: bool) -> list[int]:
    """The square crop box around a bounding box: the object fills TARGET_FILL of its side
    when ``framed``, else the box's longer side (the whole frame)."""
    side = max(x1 - x0, y1 - y0) / (TARGET_FILL if framed else 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return [int(np.round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)]


def _to_input(rgb: Image.Image, box: list[int], spec: ImageSpec) -> np.ndarray:
    """The RGB image's square ``box`` (past the edges: the median colour of the top and bottom
    rows) resized to S x S and normalised -> [3, S, S] float32."""
    arr = np.asarray(rgb)
    fill = tuple(int(v) for v in np.median(np.concatenate([arr[0], arr[-1]]), axis=0))
    small = _crop_resized(rgb, tuple(box), spec.size, fill)
    x = np.asarray(small, dtype=np.float32) / 255.0
    x = (x - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    return x.transpose(2, 0, 1).astype(np.float32)


def object_box(prob: np.ndarray, crop_box: list[int]) -> list[int] | None:
    """The segmenter's object probability [S, S] over ``crop_box`` (image pixels) -> the square
    box, in image pixels, that frames what it found as :func:`preprocess` frames an object;
    None when it found nothing."""
    ys, xs = np.nonzero(_segmenter_mask(prob))
    if len(xs) == 0:
        return None
    scale = (crop_box[2] - crop_box[0]) / prob.shape[0]
    x0, y0 = crop_box[:2]
    return _square_box(
        x0 + xs.min() * scale, x0 + (xs.max() + 1) * scale,
        y0 + ys.min() * scale, y0 + (ys.max() + 1) * scale, True,
    )  # fmt: skip


def _agrees(prob: np.ndarray, mask: np.ndarray, box: list[int]) -> bool:
    """Whether the segmenter's object probability [S, S] over the crop ``box`` and the colour
    rule's mask [H, W] bool overlap by at least AGREE (IoU, at the segmenter's resolution)."""
    s = prob.shape[0]
    framed = _crop_resized(Image.fromarray(mask.astype(np.uint8) * 255), tuple(box), s, 0)
    theirs, ours = np.asarray(framed) >= 128, _segmenter_mask(prob)
    union = (theirs | ours).sum()
    return bool(union) and (theirs & ours).sum() / union >= AGREE


def find_object(
    img: Image.Image,
    spec: ImageSpec,
    segment: Callable[[np.ndarray], np.ndarray] | None = None,
    passes: int = SEGMENT_PASSES,
) -> tuple[np.ndarray, dict]:
    """:func:`preprocess`, and when there is a ``segment`` function ([3, S, S] input -> [S, S]
    object probability): for a photo on a plain background, check the colour rule's mask against
    the segmenter's (:func:`_agrees`); for a busy photo (mask source "none"), or one where they
    disagree, ask the segmenter where the object is in the whole frame, then up to ``passes`` - 1
    times again in the square around what it found (an object small in a wide photo is a few
    pixels of the first frame), cut that out (:func:`cut_out`) and frame it (mask source
    "segmenter"). When it finds nothing, the answer is :func:`preprocess`'s."""
    x, info, mask = _preprocess(img, spec)
    if info["mask_source"] == "alpha" or segment is None:
        return x, info
    rgb = None  # converted once, and only when the segmenter looks again
    if info["mask_source"] == "background":
        if _agrees(segment(x), mask, info["crop_box"]):
            return x, info
        rgb, box = img.convert("RGB"), _square_box(0, img.width, 0, img.height, False)
        prob = segment(_to_input(rgb, box, spec))  # the whole frame, as a busy photo's
    else:
        box, prob = info["crop_box"], segment(x)
    cut = cut_out(img, prob, box)
    for _ in range(passes - 1):
        closer = object_box(prob, box) if cut is not None else None
        if closer is None or closer[2] - closer[0] > REFINE_BELOW * (box[2] - box[0]):
            break
        if rgb is None:
            rgb = img.convert("RGB")
        closer_prob = segment(_to_input(rgb, closer, spec))
        closer_cut = cut_out(img, closer_prob, closer)
        if closer_cut is None:
            break
        box, prob, cut = closer, closer_prob, closer_cut
    if cut is None:
        return x, info
    x, framed = preprocess(cut, spec)
    return x, {**framed, "mask_source": "segmenter"}
