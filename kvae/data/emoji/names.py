"""Emoji names: the dataset names' styles, and the key the split is by (an
emoji's code points without skin tones and variation selectors)."""

import hashlib

from kvae.data.errors import DataError

STYLES = ("noto", "twemoji", "fluent")

TEST_MODULUS = 10

SKIN_TONES = range(0x1F3FB, 0x1F400)

VARIATION_SELECTORS = (0xFE0E, 0xFE0F)


def parse_name(name):
    """The styles of a dataset name: "emoji" is all three, "emoji:noto,fluent"
    the ones listed (in STYLES order)."""
    if name == "emoji":
        return STYLES
    if not name.startswith("emoji:"):
        raise DataError(f"Not an emoji dataset name: {name!r}.")
    asked = [part.strip() for part in name[len("emoji:") :].split(",") if part.strip()]
    unknown = [part for part in asked if part not in STYLES]
    if not asked or unknown:
        raise DataError(
            f"{name}: emoji styles are {', '.join(STYLES)} (e.g. emoji:noto,twemoji). "
            f"Received: {', '.join(unknown) or 'none'}"
        )
    return tuple(style for style in STYLES if style in asked)


def emoji_key(code_points):
    """The key an emoji is split by: its code points, lowercase hex joined by
    "-", without skin-tone modifiers and variation selectors."""
    kept = [c for c in code_points if c not in SKIN_TONES and c not in VARIATION_SELECTORS]
    return "-".join(f"{c:04x}" for c in kept)


def is_test_key(key):
    """Whether an emoji key belongs to the test split (see the module doc)."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % TEST_MODULUS == 0


def code_points_of_file_name(name):
    """Code points from a file name such as "1f469-1f3fd-200d-1f4bb.png"."""
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    try:
        return tuple(int(part, 16) for part in stem.split("-"))
    except ValueError:
        return None
