"""What the service accepts: its limits, the parameter types of its routes
(pydantic, strict where pydantic's lax mode would guess), and the reading
of uploads and given latents. Errors are InvalidArgument whose message
starts with the field's name, which the guard turns into the error body."""

import os
import typing as t
from pathlib import Path

import bentoml
import numpy as np
import pydantic
from bentoml.exceptions import InvalidArgument
from PIL import Image, UnidentifiedImageError

from kvae import data
from kvae.latent_paths import PATHS

MAX_IMAGES = 256
"""The most images (or latent rows) one request decodes."""
MAX_UPLOAD_BYTES = 4 * 2**20
MAX_PIXELS = 4096 * 4096
"""Uploads whose header declares more pixels are refused before decoding."""
MAX_FORM_BYTES = MAX_UPLOAD_BYTES + 64 * 2**10
MAX_JSON_BYTES = 2 * 2**20
MAX_SEED = 2**64 - 1
MAX_TEMPERATURE = 10.0
MAX_ABS_LATENT = 1e6
"""Given latents are bounded (a prior draw is within +-10): far beyond, the
decoder's float32 arithmetic overflows."""
MAX_STEPS = 64
"""The most frames of an interpolation or columns of a traversal."""
MAX_SPAN = 10.0
"""The widest traversal, in prior standard deviations either side."""


def _not_a_boolean(value):
    """pydantic's lax mode reads true and false as 1 and 0; a number field
    takes numbers only."""
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true or false")
    return value


def _a_boolean(value):
    """A boolean field takes true or false (JSON) or the text "true" or
    "false" (a form's text part); pydantic's lax mode would also read 0, 1,
    "yes", "off", ..."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise ValueError("true or false is expected")
    return value


def _an_integer(value):
    """An integer field takes integers (or a form's text of one), not true,
    false or 0.0, which pydantic's lax mode would read as integers."""
    if isinstance(value, float):
        raise ValueError("an integer is expected, not a number with a fraction part or exponent")
    return _not_a_boolean(value)


NumberOnly = pydantic.BeforeValidator(_not_a_boolean)
IntegerOnly = pydantic.BeforeValidator(_an_integer)
Flag = t.Annotated[bool, pydantic.BeforeValidator(_a_boolean)]
Format = t.Literal["png", "json"]
Path_ = t.Literal[PATHS]
Seed = t.Annotated[int, IntegerOnly, pydantic.Field(ge=0, le=MAX_SEED)]
Stage = t.Annotated[int, IntegerOnly]
ImageCount = t.Annotated[int, IntegerOnly, pydantic.Field(ge=1, le=MAX_IMAGES)]
Steps = t.Annotated[int, IntegerOnly, pydantic.Field(ge=2, le=MAX_STEPS)]
Span = t.Annotated[float, NumberOnly, pydantic.Field(gt=0.0, le=MAX_SPAN)]
Temperature = t.Annotated[float, NumberOnly, pydantic.Field(ge=0.0, le=MAX_TEMPERATURE)]
Number = t.Annotated[float, NumberOnly]
Latent = list[Number]
Latents = list[list[Number]]
Indices = list[t.Annotated[int, IntegerOnly, pydantic.Field(ge=0)]]
Upload = t.Annotated[Path, bentoml.validators.ContentType("image/*")]


def read_upload(path, shape, background=(0, 0, 0)):
    """An uploaded image file -> float32 (H, W, C) in [0, 1] for a model of
    data `shape`: decoded by PIL, transparent pixels composited on
    `background` (the RGB colour of the model's training pictures,
    `kvae.data.background`), converted to grey (C = 1) or RGB (C = 3),
    centre-cropped to a square and resized (bilinear) when its size
    differs. Errors are InvalidArgument naming the field `image`."""
    if len(shape) != 3:
        raise InvalidArgument(f"image: the model takes vectors of shape {tuple(shape)}, not images")
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise InvalidArgument(f"image: {size} bytes is over the limit of {MAX_UPLOAD_BYTES}")
    try:
        with Image.open(path, formats=("PNG", "JPEG")) as picture:
            width, height = picture.size  # from the header: nothing is decoded yet
            if width * height > MAX_PIXELS:
                raise InvalidArgument(
                    f"image: {width}x{height} pixels is over the limit of {MAX_PIXELS} pixels"
                )
            if getattr(picture, "n_frames", 1) > 1:
                raise InvalidArgument("image: animated or multi-frame images are not accepted")
            picture.load()
            pixels = _fitted(_opaque(picture, background), shape)
    except Image.DecompressionBombError as error:
        raise InvalidArgument(
            f"image: the header declares more pixels than the limit of {MAX_PIXELS} pixels"
        ) from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InvalidArgument(
            f"image: cannot decode the upload as a PNG or JPEG image ({type(error).__name__})"
        ) from error
    return pixels.astype(np.float32) / 255.0


def _opaque(picture, background):
    """The picture with any transparency composited on `background`."""
    if picture.mode not in ("RGBA", "LA", "PA") and "transparency" not in picture.info:
        return picture
    rgba = picture.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba)


def _fitted(picture, shape):
    """A decoded picture as uint8 (H, W, C) of the model's shape."""
    height, width, channels = shape
    if channels == 3:
        if picture.size != (width, height):
            return data.center_crop_resize(picture, height)
        return np.asarray(picture.convert("RGB"))
    grey = picture.convert("L")
    if grey.size != (width, height):
        grey = Image.fromarray(data.center_crop_resize(grey, height)[..., 0])
    return np.asarray(grey)[..., None]


def given_latents(z, dim, field="z", most=MAX_IMAGES):
    """A request's latents as float32 (n, dim), checked: 1 to `most` rows
    of `dim` finite numbers; errors name `field`."""
    if not 1 <= len(z) <= most:
        raise InvalidArgument(f"{field}: give 1 to {most} rows of {dim} numbers")
    for row in z:
        if len(row) != dim:
            raise InvalidArgument(
                f"{field}: each row must hold {dim} numbers (the model's latent length), "
                f"got {len(row)}"
            )
    latents = np.asarray(z, dtype=np.float64)
    if not (np.abs(latents) <= MAX_ABS_LATENT).all():
        raise InvalidArgument(
            f"{field}: every number must be finite, from -{MAX_ABS_LATENT:g} to {MAX_ABS_LATENT:g}"
        )
    return latents.astype(np.float32)


def given_point(point, dim, field):
    """One latent vector (a list of `dim` numbers) as float32 (dim,)."""
    return given_latents([point], dim, field, most=1)[0]


def given_indices(indices, dim, field="latents"):
    """Latent indices, each from 0 to dim - 1, without repeats."""
    if not 1 <= len(indices) <= dim:
        raise InvalidArgument(f"{field}: give 1 to {dim} latent indices")
    if max(indices) >= dim or len(set(indices)) != len(indices):
        raise InvalidArgument(f"{field}: indices from 0 to {dim - 1}, each at most once")
    return list(indices)
