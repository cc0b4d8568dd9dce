"""Where the emoji packages are, and reading each style's images as
(code points, encoded image bytes): Noto's font through fontTools, the npm
styles from their `npm pack` tarballs or unpacked folders."""

import tarfile
from pathlib import Path

from kvae.data.emoji.names import code_points_of_file_name
from kvae.data.errors import DataError

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


def source_stamp(path):
    """What the cache of a style's prepared images depends on: its file or
    folder, size and modification time."""
    path = Path(path)
    stat = path.stat()
    if path.is_dir():
        return {"path": str(path.resolve()), "mtime_ns": stat.st_mtime_ns}
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
