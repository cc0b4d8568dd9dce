"""The emoji data (kvae/data/emoji) on a few dozen images of the real
packages: Debian's Noto font (CI installs it as root, like Fashion-MNIST)
and the npm packages of Twemoji and Fluent 3-D (CI fetches them with npm
when it can). A style whose package is missing is skipped, saying so."""

import hashlib
import io
import os

import numpy as np
import pytest
from PIL import Image

from kvae.data import emoji
from kvae.data.emoji import sources
from kvae.data.errors import DataError

KEYS = {
    "1f44b",  # waving hand: five skin tones
    "1f44c",  # OK hand: five skin tones, a test emoji
    "1f468-200d-1f4bb",  # man technologist: a ZWJ sequence with tones, a test emoji
    "270a",  # raised fist: tones, a test emoji
    "261d",  # index pointing up: tones (with U+FE0F in some files)
    "1f600",
    "2764",  # red heart: U+FE0F in some files
    "1f1e8-1f1f5",  # the flags of Clipperton Island and France: the same picture
    "1f1eb-1f1f7",
}
"""A few dozen images: every style and skin tone of these emoji."""


def available_styles():
    found, missing = [], []
    for style in emoji.STYLES:
        try:
            emoji.locate(style, os.environ.get("KVAE_DATA_DIR"))
            found.append(style)
        except DataError as error:
            missing.append(f"{style}: {error}")
    return found, missing


@pytest.fixture(scope="module")
def prepared():
    found, missing = available_styles()
    if not found:
        pytest.skip("no emoji package here: " + " | ".join(missing))
    for reason in missing:
        print(f"skipped style {reason}")
    return found, emoji.build(found, os.environ.get("KVAE_DATA_DIR"), keys=KEYS)


def test_prepared_images_are_uint8_rgb_on_white(prepared):
    styles, result = prepared
    images = result["images"]
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    assert 20 <= len(images) <= 200, len(images)  # a few dozen
    assert set(result["styles"]) == set(styles)
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners >= 250).mean() > 0.9  # the margin is the white background
    assert images.std() > 30  # not blank: drawings
    assert set(result["keys"]) <= KEYS and len(set(result["keys"])) >= 6


def test_the_split_keeps_every_tone_and_style_of_an_emoji_on_one_side(prepared):
    styles, result = prepared
    assert emoji.emoji_key([0x1F44B, 0x1F3FD]) == "1f44b"  # a skin tone is not part of the key
    assert emoji.emoji_key([0x2764, 0xFE0F]) == "2764"  # nor a variation selector
    train, test = emoji.split(result)
    assert set(train["keys"]).isdisjoint(test["keys"])
    assert {"1f44c", "270a"} & set(test["keys"]) and {"1f44b", "1f600"} & set(train["keys"])
    for key in set(result["keys"]):
        sides = {emoji.is_test_key(k) for k in result["keys"] if k == key}
        assert len(sides) == 1
    tones = [c for c, k in zip(result["code_points"], result["keys"]) if k == "1f44b"]
    assert len(tones) >= 6 * len(styles) - len(styles)  # every tone of every style, one side
    # the order within a side is the sha256 of style and code points, not the build order
    for side in (train, test):
        digests = [
            hashlib.sha256(f"{s}/{c}".encode()).digest()
            for s, c in zip(side["styles"], side["code_points"])
        ]
        assert digests == sorted(digests)
        assert len(side["images"]) == len(side["keys"]) == len(side["styles"])
    if len(styles) > 1:
        assert len(set(train["styles"][:10])) > 1  # the first images mix the styles
    # independent of the styles present: the rule reads the key alone
    digest = int(hashlib.sha256(b"1f44c").hexdigest(), 16)
    assert emoji.is_test_key("1f44c") == (digest % emoji.TEST_MODULUS == 0)


def test_exact_duplicates_are_dropped(prepared):
    """Counted independently: the RGBA pixels of every source image of KEYS,
    decoded here; each repeated picture is kept once."""
    styles, result = prepared
    seen, duplicates = set(), 0
    for style in styles:
        entries = sources.read_style(style, emoji.locate(style, os.environ.get("KVAE_DATA_DIR")))
        for codes, encoded in sorted(entries, key=lambda entry: entry[0]):
            if emoji.emoji_key(codes) not in KEYS:
                continue
            with Image.open(io.BytesIO(encoded)) as picture:
                rgba = picture.convert("RGBA")
            digest = hashlib.sha256(b"%dx%d" % rgba.size + rgba.tobytes()).hexdigest()
            duplicates += digest in seen
            seen.add(digest)
    assert result["duplicates"] == duplicates >= 1  # Clipperton Island's flag is France's
    assert len(result["images"]) == len(seen)


def test_a_missing_package_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataError) as raised:
        emoji.locate("fluent", tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert "@lobehub/fluent-emoji-3d" in message and "python -m kvae.data.emoji fetch" in message
    with pytest.raises(DataError, match="emoji styles are noto, twemoji, fluent"):
        emoji.parse_name("emoji:noto,apple")
    assert emoji.parse_name("emoji:fluent,noto") == ("noto", "fluent")
