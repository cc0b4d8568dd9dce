"""What the service answers: a PNG (one image or a grid), or JSON with one
base64 PNG per image and the latents they were decoded from, or numbers
for a model of vectors."""

import base64
import io

import numpy as np
from starlette.responses import JSONResponse, Response

from kvae import images as image_utils


def png_bytes(images, columns=None):
    """A PNG of one image (N = 1) or of a grid of images (N, H, W, C)."""
    if columns is None:
        columns = int(np.ceil(np.sqrt(len(images))))
    buffer = io.BytesIO()
    picture = image_utils.grid_picture(images, columns, padding=2 if len(images) > 1 else 0)
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def answer(images, data_shape, format="png", columns=None, latents=None):
    """The HTTP answer for generated or decoded `images` (N, prod(shape)):
    numbers for vectors; else a PNG grid, or with format "json" one base64
    PNG per image plus `latents` ({name: (N, K) array}, the latents the
    images were decoded from)."""
    images = images.reshape(len(images), *data_shape)
    extra = {name: value.tolist() for name, value in (latents or {}).items()}
    if len(data_shape) != 3:  # vectors (manifold2d): numbers, not pictures
        return JSONResponse({"samples": images.tolist(), **extra})
    if format == "json":
        encoded = [base64.b64encode(png_bytes(image[None])).decode() for image in images]
        return JSONResponse({"images": encoded, "media_type": "image/png", **extra})
    return Response(png_bytes(images, columns), media_type="image/png")
