"""python -m kvae.data.emoji fetch | summary [NAME]: fetch the emoji
packages with their own clients, or prepare a dataset and count it."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from kvae.data.emoji import IMAGE_SIZE, load
from kvae.data.emoji.sources import DEBIAN_FONT, PACKAGES, locate, packages_dir
from kvae.data.errors import DataError


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
