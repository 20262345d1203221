"""Uploaded photo -> the image encoder's input, with Pillow and scipy only (no model download).

1. decode: PNG / JPEG / WebP only, pixel limit checked from the header before decoding,
   truncated or garbage files rejected, EXIF orientation applied;
2. find the object: the alpha channel when there is one, otherwise (when the image border is
   nearly uniform) pixels that differ from the border colour, without specks of noise; with
   busy surroundings the whole frame, as in training, unless the bundle has a segmenter: the
   service then asks it where the object is and :func:`cut_out` makes that the alpha channel;
3. crop a square around it so that it fills TARGET_FILL of the side, as in the training renders
   (measured: the object's bounding box spans 0.57-0.83 of the frame, median 0.69), resize;
4. normalise per the manifest: (pixel / 255 - mean) / std, NCHW.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from app.bundle import ImageSpec

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
TARGET_FILL = 0.72
MAX_ASPECT = 8  # longest side / shortest side: long thin strips are refused (400)
BG_DISTANCE = 40.0  # RGB distance from the border colour that counts as object
BORDER_UNIFORMITY = 20.0  # border colour std above which the background is not modelled
# parts of the object mask smaller than this fraction of its largest part are noise. Up to 3.8
# the mask was opened and only its largest part kept, which cut thin legs and parts apart from
# the object out of the crop box: the crop then framed a different object than training showed.
# Measured on the real validation renders, white/plain backgrounds, bundle 3.8.0: IoU 0.341 ->
# 0.390, category 72 -> 79% (as 256 px JPEGs: 0.358 -> 0.391); photographs 0.315 -> 0.327.
MIN_PART_OF_LARGEST = 0.1
MIN_OBJECT, MAX_OBJECT = 0.002, 0.95  # share of the image an object mask may cover
ALPHA_BACKGROUND = (128, 128, 128)  # transparent pixels become plain grey (seen in training)


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
            img.load()
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
    """-> (mask [H, W] bool, how it was found: "alpha" | "background" | "none")."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        mask = alpha > 127
        if 0 < mask.mean() < 1:
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
        return np.ones(mask.shape, bool), "none"
    return ndimage.binary_fill_holes(mask), "background"


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """[H, W] bool -> the 8-connected parts of at least MIN_PART_OF_LARGEST of the largest."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return np.isin(labels, 1 + np.nonzero(sizes >= MIN_PART_OF_LARGEST * sizes.max())[0])


def cut_out(img: Image.Image, prob: np.ndarray, crop_box: list[int]) -> Image.Image | None:
    """A photo whose object :func:`object_mask` could not find (source "none"), and the
    segmenter's object probability [S, S] over :func:`preprocess`'s crop of it (``crop_box``,
    image pixels) -> the photo as RGBA with that mask as alpha, which :func:`preprocess` then
    frames like any cut-out; None when the mask is implausible (next to nothing, or all)."""
    x0, y0, x1, _ = crop_box
    s = prob.shape[0]
    # cleaned at the segmenter's resolution (a 12-megapixel photo took 1.1 s at its own)
    small = ndimage.binary_fill_holes(_without_specks(prob >= 0.5)).astype(np.uint8) * 255
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
    rgb: Image.Image, box: tuple[int, ...], size: int, fill: tuple[int, ...]
) -> Image.Image:
    """The square ``box`` (it may reach past the image, which is then ``fill``) resized to
    size x size. Only the part inside the image is resized, so memory follows the image and
    the output, never the box (a 30000 x 1 image once cost a 30000^2 canvas)."""
    scale = size / (box[2] - box[0])
    inner = (max(box[0], 0), max(box[1], 0), min(box[2], rgb.width), min(box[3], rgb.height))
    out = Image.new("RGB", (size, size), fill)
    if inner[2] <= inner[0] or inner[3] <= inner[1]:
        return out
    w = max(1, round((inner[2] - inner[0]) * scale))
    h = max(1, round((inner[3] - inner[1]) * scale))
    part = rgb.crop(inner).resize((w, h), Image.LANCZOS)
    out.paste(part, (round((inner[0] - box[0]) * scale), round((inner[1] - box[1]) * scale)))
    return out


def preprocess(img: Image.Image, spec: ImageSpec) -> tuple[np.ndarray, dict]:
    """-> ([3, S, S] float32 normalised, info about the crop)."""
    mask, source = object_mask(img)
    if source == "alpha":
        base = Image.new("RGB", img.size, ALPHA_BACKGROUND)
        base.paste(img.convert("RGB"), mask=img.convert("RGBA").getchannel("A"))
        rgb = base
    else:
        rgb = img.convert("RGB")
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(x1 - x0, y1 - y0) / (TARGET_FILL if source != "none" else 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = tuple(
        int(np.round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    )
    arr = np.asarray(rgb)
    fill = tuple(int(v) for v in np.median(np.concatenate([arr[0], arr[-1]]), axis=0))
    small = _crop_resized(rgb, box, spec.size, fill)
    x = np.asarray(small, dtype=np.float32) / 255.0
    x = (x - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    info = {"mask_source": source, "crop_box": list(box), "size": list(img.size)}
    return x.transpose(2, 0, 1).astype(np.float32), info
