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
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from kvae.data.errors import DataError

STYLES = ("noto", "twemoji", "fluent")
IMAGE_SIZE = 32
MARGIN = 1 / 16
"""Blank border on each side of the alpha box, as a fraction of its longer side."""
BACKGROUND = (255, 255, 255)
RESAMPLING = "LANCZOS"
TEST_MODULUS = 10
SKIN_TONES = range(0x1F3FB, 0x1F400)
VARIATION_SELECTORS = (0xFE0E, 0xFE0F)
PREPARATION_VERSION = 1
"""Changes whenever preparation changes, so old caches are not read."""

DEBIAN_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
PACKAGES = {
    "noto": "fonts-noto-color-emoji",
    "twemoji": "emoji-datasource-twitter@16.0.0",
    "fluent": "@lobehub/fluent-emoji-3d@1.1.0",
}
"""The package each style comes from (Debian; npm with the version measured)."""
NPM_LAYOUT = {
    "twemoji": ("emoji-datasource-twitter", "img/twitter/64/", ".png"),
    "fluent": ("lobehub-fluent-emoji-3d", "assets/", ".webp"),
}
"""(tarball name prefix as `npm pack` writes it, folder inside the package,
file suffix) of the npm styles."""
ATTRIBUTIONS = {
    "noto": "Noto Color Emoji, Copyright Google Inc.; the font under the SIL Open Font "
    "License 1.1, the Noto Emoji images under the Apache License 2.0 "
    "(https://github.com/googlefonts/noto-emoji)",
    "twemoji": "Twemoji graphics by Twitter, Inc. and contributors, licensed under CC-BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/), from npm emoji-datasource-twitter 16.0.0",
    "fluent": "Fluent Emoji 3D, Copyright Microsoft Corporation, MIT License "
    "(https://github.com/microsoft/fluentui-emoji), from npm @lobehub/fluent-emoji-3d 1.1.0",
}
CHANGES = (
    "cropped to the drawing, composited on white and resized to the model's size by kvae "
    "(kvae.data.emoji)"
)


# -- names ------------------------------------------------------------------------------


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


# -- where the packages are -------------------------------------------------------------


def packages_dir():
    """The folder `fetch` fills: the Keras cache's kvae/emoji-packages."""
    from kvae import inception

    return inception.keras_cache() / "kvae" / "emoji-packages"


def _search_folders(data_dir):
    folders = [Path(data_dir)] if data_dir is not None else []
    return [*folders, packages_dir()]


def locate(style, data_dir=None):
    """The file or folder a style is read from (see the module doc)."""
    folders = _search_folders(data_dir)
    if style == "noto":
        candidates = [folder / DEBIAN_FONT.name for folder in folders]
        candidates += [
            folder / "fonts-noto-color-emoji" / str(DEBIAN_FONT)[1:] for folder in folders
        ]
        candidates.append(DEBIAN_FONT)
        for path in candidates:
            if path.is_file():
                return path
    else:
        prefix, inner, _ = NPM_LAYOUT[style]
        for folder in folders:
            tarballs = sorted(folder.glob(f"{prefix}-*.tgz")) if folder.is_dir() else []
            if tarballs:
                return tarballs[-1]
            for unpacked in (folder / prefix / "package", folder / prefix):
                if (unpacked / inner).is_dir():
                    return unpacked
    where = ", ".join(str(folder) for folder in folders)
    raise DataError(
        f"emoji style {style!r} needs the package {PACKAGES[style]}, found in none of: {where}"
        + (f", {DEBIAN_FONT}" if style == "noto" else "")
        + ". Run `python -m kvae.data.emoji fetch` (npm pack, apt-get download), or "
        + (
            "apt-get install fonts-noto-color-emoji as root."
            if style == "noto"
            else f"put the `npm pack` tarball of {PACKAGES[style]} in data_dir."
        )
    )


# -- reading each style: (code points, encoded image bytes) ------------------------------


def read_noto(path):
    """[(code points, PNG bytes)] of the font's colour bitmaps, named through
    its cmap and its GSUB ligatures."""
    try:
        from fontTools.ttLib import TTFont
    except ImportError as error:
        raise DataError(
            "emoji style 'noto' reads the font with fontTools: pip install 'kvae[emoji]'"
        ) from error
    font = TTFont(str(path))
    names = {}
    for code_point, glyph in sorted(font.getBestCmap().items()):
        names.setdefault(glyph, (code_point,))
    ligatures = [
        (first, ligature.Component, ligature.LigGlyph)
        for lookup in font["GSUB"].table.LookupList.Lookup
        if lookup.LookupType == 4
        for table in lookup.SubTable
        for first, entries in table.ligatures.items()
        for ligature in entries
    ]
    changed = True
    while changed:  # ligatures may be built from other ligatures
        changed = False
        for first, components, glyph in ligatures:
            parts = [first, *components]
            if glyph not in names and all(part in names for part in parts):
                names[glyph] = sum((names[part] for part in parts), ())
                changed = True
    strike = font["CBDT"].strikeData[0]
    return [(names[glyph], strike[glyph].imageData) for glyph in strike if glyph in names]


def read_npm(style, path):
    """[(code points, image bytes)] of an npm style, from its tarball or its
    unpacked folder."""
    _, inner, suffix = NPM_LAYOUT[style]
    found = []
    if path.is_file():
        with tarfile.open(path, "r:gz") as bundle:
            for member in bundle.getmembers():
                name = member.name
                if member.isfile() and f"/{inner}" in f"/{name}" and name.endswith(suffix):
                    codes = code_points_of_file_name(name)
                    if codes is not None:
                        found.append((codes, bundle.extractfile(member).read()))
    else:
        for file in sorted((path / inner).glob(f"*{suffix}")):
            codes = code_points_of_file_name(file.name)
            if codes is not None:
                found.append((codes, file.read_bytes()))
    return found


def read_style(style, path):
    return read_noto(path) if style == "noto" else read_npm(style, path)


# -- preparation ------------------------------------------------------------------------------


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


def _source_stamp(path):
    path = Path(path)
    stat = path.stat()
    if path.is_dir():
        return {"path": str(path.resolve()), "mtime_ns": stat.st_mtime_ns}
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


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


def cache_dir():
    from kvae import inception

    return inception.keras_cache() / "kvae" / "emoji"


def load(name="emoji", data_dir=None, image_size=IMAGE_SIZE, progress=None):
    """(train, test) of a dataset name, each {"images", "keys", "styles",
    "code_points"}, from the cache when the same settings and package files
    were prepared before."""
    styles = parse_name(name)
    sources = {style: _source_stamp(locate(style, data_dir)) for style in styles}
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
                    return _split_from(stored)
        except (OSError, ValueError, KeyError):
            pass  # unreadable: prepared again below
    prepared = build(styles, data_dir, image_size, progress=progress or _print_progress)
    test = np.array([is_test_key(key) for key in prepared["keys"]])
    arrays = {
        "settings": np.array(encoded),
        "images": prepared["images"],
        "keys": np.array(prepared["keys"]),
        "styles": np.array(prepared["styles"]),
        "code_points": np.array(prepared["code_points"]),
        "test": test,
        "duplicates": np.array(prepared["duplicates"]),
        "skipped": np.array(prepared["skipped"]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)
    return _split_from(arrays)


def _split_from(arrays):
    test = np.asarray(arrays["test"], bool)
    fields = ("images", "keys", "styles", "code_points")
    return tuple(
        {field: np.asarray(arrays[field])[rows] for field in fields} for rows in (~test, test)
    )


def _print_progress(message):
    print(message, flush=True)


def load_split(name, split, data_dir=None, image_size=IMAGE_SIZE):
    """The uint8 images of one split ("train", or "test"/"validation" for
    the held-out emoji)."""
    train, test = load(name, data_dir, image_size)
    return train["images"] if split == "train" else test["images"]


# -- fetching the packages (python -m kvae.data.emoji fetch) -------------------------------


def fetch(folder=None, run=subprocess.run):
    """Fetch the packages with their own clients into `folder` (default
    `packages_dir()`): `npm pack` for the npm styles, `apt-get download` and
    `dpkg-deb -x` for the font unless Debian's is installed. Returns
    {style: path or the reason it failed}."""
    folder = Path(folder or packages_dir())
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for style in ("twemoji", "fluent"):
        if shutil.which("npm") is None:
            results[style] = "npm not found (install Node.js's npm)"
            continue
        done = run(["npm", "pack", PACKAGES[style]], cwd=folder, capture_output=True, text=True)
        results[style] = (
            str(locate(style, folder))
            if done.returncode == 0
            else f"npm pack failed: {done.stderr.strip().splitlines()[-1:]}"
        )
    if DEBIAN_FONT.is_file():
        results["noto"] = str(DEBIAN_FONT)
    elif shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        results["noto"] = "apt-get and dpkg-deb not found: get NotoColorEmoji.ttf yourself"
    else:
        done = run(
            ["apt-get", "download", PACKAGES["noto"]], cwd=folder, capture_output=True, text=True
        )
        debs = sorted(folder.glob("fonts-noto-color-emoji_*.deb"))
        if done.returncode != 0 or not debs:
            results["noto"] = f"apt-get download failed: {done.stderr.strip().splitlines()[-1:]}"
        else:
            run(
                ["dpkg-deb", "-x", str(debs[-1]), str(folder / "fonts-noto-color-emoji")],
                check=True,
            )
            results["noto"] = str(locate("noto", folder))
    return results


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m kvae.data.emoji",
        description="Fetch the emoji packages, or prepare and summarise a dataset.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fetching = commands.add_parser("fetch", help="npm pack / apt-get download the packages")
    fetching.add_argument("--dir", type=Path, help=f"where to put them (default {packages_dir()})")
    summary = commands.add_parser("summary", help="prepare (or read the cache) and count")
    summary.add_argument("name", nargs="?", default="emoji")
    summary.add_argument("--data-dir", type=Path)
    summary.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for style, result in fetch(args.dir).items():
                print(f"{style}: {result}")
            return 0
        train, test = load(args.name, args.data_dir, args.image_size)
    except DataError as error:
        print(f"kvae.data.emoji: error: {error}", file=sys.stderr)
        return 2
    for split, part in (("train", train), ("test", test)):
        styles, counts = np.unique(part["styles"], return_counts=True)
        print(
            f"{split}: {len(part['images'])} images of {len(set(part['keys']))} emoji ("
            + ", ".join(f"{style} {count}" for style, count in zip(styles, counts))
            + ")"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
