"""`emoji` and `emoji:STYLE[,STYLE...]`: colour emoji in three art styles,
read from packages that ship them, so that a colour model can be trained
with no download at run time.

- noto: Debian's `fonts-noto-color-emoji` (NotoColorEmoji.ttf), 136x128
  PNG bitmaps of the font's CBDT table; the font under the SIL OFL 1.1, the
  Noto Emoji images under the Apache License 2.0 (Google).
- twemoji: npm's `emoji-datasource-twitter` (img/twitter/64/), 64x64 PNG;
  Twemoji graphics by Twitter, Inc. and contributors, CC-BY 4.0.
- fluent: npm's `@lobehub/fluent-emoji-3d` (assets/), 256x256 WebP, shaded
  3-D; Fluent Emoji by Microsoft Corporation, MIT.

`ATTRIBUTIONS` holds those credits; docs/emoji.md and every model card
trained on the data repeat them, and say that the images were changed
(cropped, composited on white, resized).

Where the packages are looked for, in each style's order: the `data_dir`
(a folder with NotoColorEmoji.ttf, the `npm pack` tarballs, or their
unpacked `package/` folders under the package's name), the cache folder
that `python -m kvae.data.emoji fetch` fills (`~/.keras/kvae/emoji-packages`,
under $KERAS_HOME if set), and for noto Debian's font path. A missing style
is a one-line DataError naming its package and the fetch command.

Preparation, the same for every style: decode as RGBA; cut to the box of
the pixels whose alpha is not 0; centre on a transparent square whose side
is that box's longer side plus MARGIN of it on each side; composite on
white; resize to `image_size` (32 by default) with PIL's LANCZOS filter.
Images whose RGBA pixels are identical to an earlier one's are dropped (in
the order noto, twemoji, fluent, then by code points). Noto's glyphs are
named by code points through the font's cmap and its GSUB ligatures; glyphs
that no code point sequence reaches (the font's internal parts) are left
out.

The split is by emoji, not by image: an emoji's key is its code point
sequence without skin-tone modifiers (U+1F3FB to U+1F3FF) and variation
selectors (U+FE0E, U+FE0F), so every style and skin tone of one emoji lands
on the same side; a key is held out for the test split when the sha256 of
its text, read as a number, is divisible by TEST_MODULUS (about 10 % of the
emoji; the rule depends on the key alone, not on which styles are there).
The prepared arrays are cached (`cache_dir`), keyed by the settings and the
package files' names, sizes and modification times.
"""

import hashlib
import json
import os

import numpy as np

from kvae.data.emoji.names import STYLES, TEST_MODULUS, emoji_key, is_test_key, parse_name
from kvae.data.emoji.prepare import (
    BACKGROUND,
    IMAGE_SIZE,
    MARGIN,
    PREPARATION_VERSION,
    RESAMPLING,
    build,
    prepare,
    split,
)
from kvae.data.emoji.sources import (
    ATTRIBUTIONS,
    CHANGES,
    PACKAGES,
    locate,
    packages_dir,
    source_stamp,
)

__all__ = [
    "ATTRIBUTIONS",
    "CHANGES",
    "IMAGE_SIZE",
    "PACKAGES",
    "STYLES",
    "build",
    "emoji_key",
    "is_test_key",
    "load",
    "load_split",
    "locate",
    "packages_dir",
    "parse_name",
    "prepare",
    "split",
]


def cache_dir():
    from kvae import inception

    return inception.keras_cache() / "kvae" / "emoji"


def load(name="emoji", data_dir=None, image_size=IMAGE_SIZE, progress=None):
    """(train, test) of a dataset name, each {"images", "keys", "styles",
    "code_points"}, from the cache when the same settings and package files
    were prepared before."""
    styles = parse_name(name)
    sources = {style: source_stamp(locate(style, data_dir)) for style in styles}
    settings = {
        "styles": list(styles),
        "image_size": int(image_size),
        "sources": sources,
        "margin": MARGIN,
        "background": list(BACKGROUND),
        "resampling": RESAMPLING,
        "test_modulus": TEST_MODULUS,
        "version": PREPARATION_VERSION,
    }
    encoded = json.dumps(settings, sort_keys=True)
    path = cache_dir() / (hashlib.sha256(encoded.encode()).hexdigest()[:32] + ".npz")
    if path.is_file():
        try:
            with np.load(path) as stored:
                if str(stored["settings"]) == encoded:
                    return split(stored)
        except (OSError, ValueError, KeyError):
            pass  # unreadable: prepared again below
    prepared = build(styles, data_dir, image_size, progress=progress or _print_progress)
    arrays = {
        "settings": np.array(encoded),
        "images": prepared["images"],
        "keys": np.array(prepared["keys"]),
        "styles": np.array(prepared["styles"]),
        "code_points": np.array(prepared["code_points"]),
        "duplicates": np.array(prepared["duplicates"]),
        "skipped": np.array(prepared["skipped"]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)
    return split(arrays)


def _print_progress(message):
    print(message, flush=True)


def load_split(name, split, data_dir=None, image_size=IMAGE_SIZE):
    """The uint8 images of one split ("train", or "test"/"validation" for
    the held-out emoji)."""
    train, test = load(name, data_dir, image_size)
    return train["images"] if split == "train" else test["images"]
