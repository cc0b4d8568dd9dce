"""Preparing the images: each cut to its drawing, centred with a margin,
composited on white and resized; exact duplicates dropped; the split by
emoji."""

import hashlib
import io

import numpy as np
from PIL import Image

from kvae.data.emoji.names import emoji_key, is_test_key
from kvae.data.emoji.sources import locate, read_style
from kvae.data.errors import DataError

IMAGE_SIZE = 32

MARGIN = 1 / 16
"""Blank border on each side of the alpha box, as a fraction of its longer side."""

BACKGROUND = (255, 255, 255)

RESAMPLING = "LANCZOS"

PREPARATION_VERSION = 1
"""Changes whenever preparation changes, so old caches are not read."""


def prepare(encoded, image_size=IMAGE_SIZE):
    """(RGBA pixel digest, uint8 RGB (S, S, 3)) of one encoded image, prepared
    as the module doc says; None for an image with no visible pixel."""
    with Image.open(io.BytesIO(encoded)) as picture:
        rgba = picture.convert("RGBA")
    digest = hashlib.sha256(b"%dx%d" % rgba.size + rgba.tobytes()).hexdigest()
    box = rgba.getchannel("A").getbbox()
    if box is None:
        return None
    drawing = rgba.crop(box)
    side = max(drawing.size)
    margin = int(round(side * MARGIN))
    canvas = Image.new("RGBA", (side + 2 * margin,) * 2, (*BACKGROUND, 0))
    canvas.paste(
        drawing, (margin + (side - drawing.size[0]) // 2, margin + (side - drawing.size[1]) // 2)
    )
    flat = Image.alpha_composite(Image.new("RGBA", canvas.size, (*BACKGROUND, 255)), canvas)
    resized = flat.convert("RGB").resize(
        (image_size, image_size), getattr(Image.Resampling, RESAMPLING)
    )
    return digest, np.asarray(resized, dtype=np.uint8)


def build(styles, data_dir=None, image_size=IMAGE_SIZE, keys=None, progress=None):
    """Every image of `styles`, prepared: {"images": uint8 (N, S, S, 3),
    "keys", "styles", "code_points" (one string each), "duplicates" (how many
    were dropped), "skipped" (blank images)}, in the order noto, twemoji,
    fluent, then by code points. `keys` (a set of emoji keys) keeps only
    those emoji (the tests use a few dozen)."""
    images, labels, dropped, blank, seen = [], [], 0, 0, set()
    for style in styles:
        path = locate(style, data_dir)
        entries = sorted(read_style(style, path), key=lambda entry: entry[0])
        if progress is not None:
            progress(f"emoji: {len(entries)} {style} images from {path}")
        for code_points, encoded in entries:
            key = emoji_key(code_points)
            if keys is not None and key not in keys:
                continue
            prepared = prepare(encoded, image_size)
            if prepared is None:
                blank += 1
                continue
            digest, pixels = prepared
            if digest in seen:
                dropped += 1
                continue
            seen.add(digest)
            images.append(pixels)
            labels.append((key, style, "-".join(f"{c:04x}" for c in code_points)))
    if not images:
        raise DataError(f"emoji: no images found for {', '.join(styles)}.")
    keys_, styles_, codes = (list(column) for column in zip(*labels))
    return {
        "images": np.stack(images),
        "keys": keys_,
        "styles": styles_,
        "code_points": codes,
        "duplicates": dropped,
        "skipped": blank,
    }


def mixed_order(styles, code_points):
    """Row indices sorted by the sha256 of each image's style and code
    points: a fixed order in which styles and emoji are mixed, so the first
    images of a split (the check metric's, the pictures') are a fair sample
    rather than the first style's first code points."""
    digests = [
        hashlib.sha256(f"{style}/{code}".encode()).digest()
        for style, code in zip(styles, code_points)
    ]
    return np.array(sorted(range(len(digests)), key=digests.__getitem__), dtype=np.int64)


def split(prepared):
    """(train, test) of prepared images, each {"images", "keys", "styles",
    "code_points"} in `mixed_order`: an emoji is held out when `is_test_key`
    says so."""
    order = mixed_order(prepared["styles"], prepared["code_points"])
    test = np.array([is_test_key(key) for key in prepared["keys"]], bool)[order]
    fields = ("images", "keys", "styles", "code_points")
    return tuple(
        {field: np.asarray(prepared[field])[order][rows] for field in fields}
        for rows in (~test, test)
    )
