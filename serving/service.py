"""HTTP generation API over kvae zoo models (BentoML 1.4).

    bentoml serve                                   # from the repository root: bentofile.yaml
    bentoml serve serving.service:KVAE --arg model=fmnist_mse
    KVAE_MODEL=path/to/stage1.keras bentoml serve serving.service:KVAE

The model is a zoo name (default `fmnist_two_stage_computed`) or the path of
a stage-1 `.keras` file (with `--arg stage2=path` for its second stage),
chosen by `--arg model=...` or $KVAE_MODEL. It is loaded once per worker,
float32, on the CPU.

Routes:
- POST /encode           multipart `image` (PNG or JPEG) [, `sample`, `seed`]
                         -> JSON mu, log_sigma (and z when sample is true);
- POST /reconstruct      multipart `image` [, `sample`, `seed`] -> PNG;
- POST /mean-generate    JSON {"n", "seed", "stage", "temperature"} or {"z": [[...]]}
                         [, "format": "png" | "json"] -> decoder means, a PNG grid or
                         JSON with one base64 PNG per image;
- POST /sample-generate  the same, drawing each image from p(x|z);
- GET  /models           the loaded model's card and metrics;
- BentoML's /livez, /readyz, /docs.json and the Swagger UI at /.

Generation runs through `Decoder`, a second service whose decode APIs use
adaptive batching: concurrent requests are decoded together. The random
numbers of a request (its latents and its pixel noise) come from its own
seed with NumPy, following `kvae.generation.protocol`, so an image depends
on the request only, never on which requests shared its batch, and equals
what `kvae.zoo.load(name).generate(n, seed=...)` gives. `--arg batching=false` decodes in the front
service instead (for comparison; see benchmarks/serve_load.py).

Bad input gets a 400 whose message starts with the field's name; the server
keeps serving.
"""

import base64
import io
import json
import os
import typing as t
from pathlib import Path

import aiohttp
import anyio
import bentoml
import numpy as np
import pydantic
from bentoml.exceptions import InvalidArgument
from PIL import Image, UnidentifiedImageError
from starlette.responses import JSONResponse, Response

DEFAULT_MODEL = "fmnist_two_stage_computed"
MODEL_ENV = "KVAE_MODEL"
MAX_IMAGES = 256
MAX_UPLOAD_BYTES = 4 * 2**20
MAX_TEMPERATURE = 10.0
BATCH_LATENCY_MS = 2000  # generous: a slow CPU would answer 503 "overloaded" below ~1 s
DECODER_ATTEMPTS = 3
FRONT_THREADS = 16
"""Threads for the front service's sync API (/encode); BentoML's default is
one request at a time. The decoding APIs are async."""


class ServiceArgs(pydantic.BaseModel):
    """`bentoml serve --arg key=value`; without one, $KVAE_MODEL,
    $KVAE_STAGE2 and $KVAE_BATCHING, then the defaults."""

    model: str = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    stage2: str | None = os.environ.get("KVAE_STAGE2") or None
    batching: bool = os.environ.get("KVAE_BATCHING", "true").lower() not in ("0", "false", "no")


ARGS = bentoml.use_arguments(ServiceArgs)


# -- the model -------------------------------------------------------------------


def is_file_spec(spec):
    """Whether a model spec names a `.keras` file or a preset folder rather
    than a zoo model."""
    return spec.endswith(".keras") or os.sep in spec


def load_model(spec, stage2=None):
    """A float32 `kvae.TwoStageVAE` for CPU serving: a zoo name, a preset
    folder, or a stage-1 `.keras` path (and an optional stage-2 path)."""
    import kvae
    from kvae import zoo

    if not is_file_spec(spec):
        if stage2:
            raise ValueError("stage2= applies to a .keras model path, not a zoo name")
        return zoo.load(spec).to_float32()
    if Path(spec).is_dir():
        return kvae.TwoStageVAE.load(spec).to_float32()
    stages = [kvae.load(path, compile=False) for path in (spec, stage2) if path]
    return kvae.TwoStageVAE(*stages, name=Path(spec).name).to_float32()


def model_card():
    """What GET /models answers: the zoo card (with metrics.json when the
    zoo has it) or, for a file, what is known about it."""
    from kvae import zoo

    spec = ARGS.model
    if is_file_spec(spec):
        return {
            "name": Path(spec).name,
            "path": spec,
            "stage2": ARGS.stage2,
            "source": "a .keras file given to the service",
        }
    card = dict(zoo.card(spec))
    metrics_file = zoo.default_dir() / spec / "metrics.json"
    if metrics_file.is_file():
        card["metrics_json"] = json.loads(metrics_file.read_text())
    return card


class ModelsRoute:
    """ASGI middleware that answers GET /models with `model_card()`
    (BentoML's API routes are POST, and a mounted app would redirect
    /models to /models/)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") != "/models":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET":
            response = JSONResponse({"error": "/models answers GET"}, status_code=405)
        else:
            try:
                response = JSONResponse(model_card())
            except Exception as error:  # noqa: BLE001 (a bad card must not stop the server)
                response = JSONResponse({"error": f"model: {error}"}, status_code=500)
        await response(scope, receive, send)


# -- pure helpers (tested directly) ------------------------------------------------


def read_upload(path, shape):
    """An uploaded image file -> float32 (H, W, C) in [0, 1] for a model of
    data `shape`: decoded by PIL, converted to grey (C = 1) or RGB (C = 3),
    centre-cropped to a square and resized (bilinear) when its size
    differs. Errors are InvalidArgument naming the field `image`."""
    from kvae import data

    if len(shape) != 3:
        raise InvalidArgument(f"image: the model takes vectors of shape {tuple(shape)}, not images")
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise InvalidArgument(f"image: {size} bytes is over the limit of {MAX_UPLOAD_BYTES}")
    try:
        with Image.open(path) as picture:
            if picture.format not in ("PNG", "JPEG"):
                raise InvalidArgument(f"image: PNG or JPEG expected, got {picture.format}")
            picture.load()
            height, width, channels = shape
            if channels == 3:
                pixels = (
                    data.center_crop_resize(picture, height)
                    if picture.size != (width, height)
                    else np.asarray(picture.convert("RGB"))
                )
            else:
                grey = picture.convert("L")
                if grey.size != (width, height):
                    grey = Image.fromarray(data.center_crop_resize(grey, height)[..., 0])
                pixels = np.asarray(grey)[..., None]
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InvalidArgument(
            f"image: cannot decode the upload as a PNG or JPEG image ({type(error).__name__})"
        ) from error
    return pixels.astype(np.float32) / 255.0


def given_latents(z, dim):
    """The request's latents as float32 (n, dim), checked: 1 to MAX_IMAGES
    rows of `dim` finite numbers."""
    latents = np.asarray(z, dtype=np.float64) if len(z) else np.zeros((0, dim))
    if latents.ndim != 2 or not 1 <= len(latents) <= MAX_IMAGES:
        raise InvalidArgument(f"z: give 1 to {MAX_IMAGES} rows of {dim} numbers")
    if latents.shape[1] != dim:
        raise InvalidArgument(
            f"z: each row must hold {dim} numbers (the model's latent length), "
            f"got {latents.shape[1]}"
        )
    if not np.isfinite(latents).all():
        raise InvalidArgument("z: every number must be finite")
    return latents.astype(np.float32)


def png_bytes(images, columns=None):
    """A PNG of one image (N = 1) or of a grid of images (N, H, W, C)."""
    from kvae import images as image_utils

    if columns is None:
        columns = int(np.ceil(np.sqrt(len(images))))
    buffer = io.BytesIO()
    image_utils.grid_picture(images, columns, padding=2 if len(images) > 1 else 0).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def decode_statistics(model, latents):
    """Decoder means and log gammas of a batch of latents, NumPy float32,
    concatenated as (B, 2 * prod(data_shape)) so that one batched call
    serves both generation modes."""
    from kvae import generation

    mean, log_gamma = generation.decode_numpy(model, latents)
    mean = mean.reshape(len(latents), -1)
    log_gamma = (
        np.full_like(mean, log_gamma)
        if log_gamma.ndim == 0
        else log_gamma.reshape(len(latents), -1)
    )
    return np.concatenate([mean, log_gamma], axis=1)


# -- the services ------------------------------------------------------------------


@bentoml.service(name="kvae-decoder", workers=1, traffic={"timeout": 120})
class Decoder:
    """Batched decoding: latents (B, K) -> [means, log gammas] (B, 2 P)."""

    def __init__(self):
        self.model = load_model(ARGS.model, ARGS.stage2)

    @bentoml.api(batchable=True, max_batch_size=MAX_IMAGES, max_latency_ms=BATCH_LATENCY_MS)
    def decode_stage1(self, latents: np.ndarray) -> np.ndarray:
        return decode_statistics(self.model.stage1, latents.astype(np.float32))

    @bentoml.api(batchable=True, max_batch_size=MAX_IMAGES, max_latency_ms=BATCH_LATENCY_MS)
    def decode_stage2(self, latents: np.ndarray) -> np.ndarray:
        return decode_statistics(self.model.stage2, latents.astype(np.float32))


Format = t.Literal["png", "json"]
ImageCount = t.Annotated[int, pydantic.Field(ge=1, le=MAX_IMAGES)]
Temperature = t.Annotated[float, pydantic.Field(ge=0.0, le=MAX_TEMPERATURE)]
Upload = t.Annotated[Path, bentoml.validators.ContentType("image/*")]


@bentoml.service(name="kvae", workers=1, threads=FRONT_THREADS, traffic={"timeout": 120})
class KVAE:
    """encode, reconstruct, mean-generate, sample-generate (module docstring)."""

    decoder = bentoml.depends(Decoder)

    def __init__(self):
        self.model = load_model(ARGS.model, ARGS.stage2)
        self.data_shape = self.model.data_shape

    # image in -------------------------------------------------------------------

    @bentoml.api(route="/encode")
    def encode(self, image: Upload, sample: bool = False, seed: int | None = None) -> dict:
        """mu and log sigma of q(z|x) for the uploaded image; with
        `sample`, also z = mu + sigma * eps (eps from `seed`)."""
        x = read_upload(image, self.data_shape)[None]
        mu, log_sigma = self.model.encode(x)
        result = {"mu": mu[0].tolist(), "log_sigma": log_sigma[0].tolist()}
        if sample:
            result["z"] = self.model.sample_posterior(mu, log_sigma, seed)[0].tolist()
        return result

    @bentoml.api(route="/reconstruct")
    async def reconstruct(self, image: Upload, sample: bool = False, seed: int | None = None):
        """The decoder mean at z = mu (or at a sampled z), as a PNG."""
        x = read_upload(image, self.data_shape)[None]
        mu, log_sigma = await anyio.to_thread.run_sync(self.model.encode, x)
        z = self.model.sample_posterior(mu, log_sigma, seed) if sample else mu
        mean, _ = await self._decode_distribution(1, z)
        return Response(png_bytes(mean.reshape(1, *self.data_shape)), media_type="image/png")

    # generation -------------------------------------------------------------------

    @bentoml.api(route="/mean-generate")
    async def mean_generate(
        self,
        n: ImageCount = 16,
        seed: int | None = None,
        stage: int | None = None,
        temperature: Temperature = 1.0,
        z: list[list[float]] | None = None,
        format: Format = "png",
    ):
        """Decoder means at latents from the prior (n, seed, temperature;
        through stage 2 when the model has it), or at the given stage-1
        latents `z` (n is then their count; stage 2 makes them stage-2
        latents)."""
        return await self._generate("mean", n, seed, stage, temperature, z, format)

    @bentoml.api(route="/sample-generate")
    async def sample_generate(
        self,
        n: ImageCount = 16,
        seed: int | None = None,
        stage: int | None = None,
        temperature: Temperature = 1.0,
        z: list[list[float]] | None = None,
        format: Format = "png",
    ):
        """Draws from p(x|z) (ancestral sampling), latents as mean-generate."""
        return await self._generate("sample", n, seed, stage, temperature, z, format)

    # private helpers (never call an API method from an API: it deadlocks served) -------

    async def _decode(self, stage, latents):
        """[means, log gammas] from the batched Decoder (or, with batching
        off, here in a worker thread). Async: the Decoder's client is not
        safe to share between the threads of a sync API (under load it
        closed its connections)."""
        if ARGS.batching:
            decoder = self.decoder.to_async
            method = decoder.decode_stage1 if stage == 1 else decoder.decode_stage2
            for attempt in range(DECODER_ATTEMPTS):
                try:
                    return np.asarray(await method(latents), np.float32)
                except aiohttp.ClientConnectionError:
                    # BentoML 1.4's client for a dependency drops pooled
                    # connections under load (bentoml/BentoML#4971); decoding
                    # is idempotent, so try again on a fresh connection
                    if attempt == DECODER_ATTEMPTS - 1:
                        raise
        model = self.model.stage1 if stage == 1 else self.model.stage2
        return await anyio.to_thread.run_sync(decode_statistics, model, latents)

    async def _decode_distribution(self, stage, latents):
        """(mean, log_gamma) of a stage's p(.|z), each (B, prod(shape)), for
        `kvae.generation.run_async`."""
        mean, log_gamma = np.split(await self._decode(stage, latents), 2, axis=1)
        return mean, log_gamma

    async def _generate(self, mode, n, seed, stage, temperature, z, format):
        from kvae import generation, seeds

        stages = self.model.stages
        if stage is None:  # given z are stage-1 latents (as /encode returns them)
            stage = 1 if z is not None else stages[-1]
        if stage not in stages:
            raise InvalidArgument(
                f"stage: this model generates with stage "
                f"{' or '.join(map(str, stages))}, not {stage}"
            )
        latents = given_latents(z, self.model.latent_dim_of(stage)) if z is not None else None
        # The protocol of kvae.generation, as TwoStageVAE.generate runs it.
        steps = self.model.protocol(
            seeds.generator(seed),
            n=n,
            latents=latents,
            mode=mode,
            temperature=temperature,
            stage=stage,
        )
        images = await generation.run_async(steps, self._decode_distribution)
        images = images.reshape(len(images), *self.data_shape)
        if len(self.data_shape) != 3:  # vectors (manifold2d): numbers, not pictures
            return JSONResponse({"samples": images.tolist()})
        if format == "json":
            return JSONResponse(
                {
                    "images": [
                        base64.b64encode(png_bytes(image[None])).decode() for image in images
                    ],
                    "media_type": "image/png",
                }
            )
        return Response(png_bytes(images), media_type="image/png")


KVAE.add_asgi_middleware(ModelsRoute)
