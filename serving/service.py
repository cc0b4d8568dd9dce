"""HTTP generation API over kvae zoo models (BentoML 1.4).

    bentoml serve                                   # from the repository root: bentofile.yaml
    bentoml serve serving.service:KVAE --arg model=fmnist_mse
    KVAE_MODEL=path/to/stage1.keras bentoml serve serving.service:KVAE

The model is anything `kvae.load` reads: a zoo name (default
`fmnist_two_stage_computed`), a preset folder, a Hub handle
`hf://OWNER/NAME@COMMIT` (with HF_HUB_OFFLINE=1 for an image whose cache was
filled at build time), or the path of a stage-1 `.keras` file (with `--arg
stage2=path` for its second stage), chosen by `--arg model=...` or
$KVAE_MODEL. It is loaded once per worker, float32, on the CPU.

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

Hardening (serving/guard.py): every client mistake gets a 4xx whose body is
`{"error": "<field>: <rule>", "field": "<field>"}` and one log line without a
traceback; seeds are integers from 0 to 2^64 - 1; uploads are one PNG or
JPEG file part of at most MAX_UPLOAD_BYTES and MAX_PIXELS pixels, not
animated; JSON bodies are objects of the API's parameters with finite
numbers, at most MAX_JSON_BYTES. Overload is explicit: more than
`max_concurrency` requests in progress get a 429, a decode the batcher cannot
start within BATCH_LATENCY_MS a 503. With a token configured (`--arg
token=...` or $KVAE_API_TOKEN) every route but /livez and /readyz needs
`Authorization: Bearer <token>` (401 otherwise). /metrics is BentoML's
Prometheus endpoint.
"""

import base64
import io
import json
import logging
import os
import typing as t
from pathlib import Path

import aiohttp
import anyio
import bentoml
import numpy as np
import pydantic
from bentoml.exceptions import InvalidArgument, ServiceUnavailable
from PIL import Image, UnidentifiedImageError
from starlette.responses import JSONResponse, Response

from kvae import catalog
from serving.guard import Guard, QuietClientErrors

DEFAULT_MODEL = catalog.DEFAULT_MODEL
MODEL_ENV = "KVAE_MODEL"
MAX_IMAGES = 256
MAX_UPLOAD_BYTES = 4 * 2**20
MAX_PIXELS = 4096 * 4096
"""Uploads whose header declares more pixels are refused before decoding."""
MAX_FORM_BYTES = MAX_UPLOAD_BYTES + 64 * 2**10
MAX_JSON_BYTES = 2 * 2**20
MAX_SEED = 2**64 - 1
MAX_CONCURRENCY = 128
"""Default bound on API requests in progress per worker (429 beyond)."""
MAX_TEMPERATURE = 10.0
MAX_ABS_LATENT = 1e6
"""Given latents are bounded (a prior draw is within +-10): far beyond, the
decoder's float32 arithmetic overflows."""
BATCH_LATENCY_MS = 2000  # generous: a slow CPU would answer 503 "overloaded" below ~1 s
DECODER_ATTEMPTS = 3
DECODE_ATTEMPT_SECONDS = 15.0
FRONT_THREADS = 16
"""Threads for the front service's sync API (/encode); BentoML's default is
one request at a time. The decoding APIs are async."""


class ServiceArgs(pydantic.BaseModel):
    """`bentoml serve --arg key=value`; without one, $KVAE_MODEL,
    $KVAE_STAGE2 and $KVAE_BATCHING, then the defaults."""

    model: str = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    stage2: str | None = os.environ.get("KVAE_STAGE2") or None
    batching: bool = os.environ.get("KVAE_BATCHING", "true").lower() not in ("0", "false", "no")
    max_concurrency: int = int(os.environ.get("KVAE_MAX_CONCURRENCY") or MAX_CONCURRENCY)
    token: str | None = os.environ.get("KVAE_API_TOKEN") or None


ARGS = bentoml.use_arguments(ServiceArgs)


# -- the model -------------------------------------------------------------------


def load_model(spec, stage2=None):
    """A float32 `kvae.TwoStageVAE` for CPU serving: whatever `kvae.load`
    reads (a zoo name, a preset folder, an hf:// handle, a stage-1 `.keras`
    file), with an optional stage-2 `.keras` file for the last."""
    import kvae

    model = kvae.load(spec, compile=False)
    if isinstance(model, kvae.TwoStageVAE):
        if stage2:
            raise ValueError("stage2= applies to a stage-1 .keras file, not to " + spec)
        return model.to_float32()
    stages = [model] + ([kvae.load(stage2, compile=False)] if stage2 else [])
    return kvae.TwoStageVAE(*stages, name=Path(spec).name).to_float32()


def model_card():
    """What GET /models answers: the model's card (a zoo model's from the
    manifest, with its metrics.json when the zoo folder has it; a preset's
    or a Hub model's from its config.json) or, for a `.keras` file, what is
    known about it."""
    from kvae import hub, presets

    spec = ARGS.model
    if hub.is_handle(spec):
        folder, provenance = hub.download(spec)  # cached: no request for a pinned commit
        return {**presets.read(folder).get("card", {}), "provenance": provenance}
    if Path(spec).is_dir():
        return presets.read(spec).get("card") or {"name": Path(spec).name}
    if spec.endswith(".keras") or os.sep in spec:
        return {
            "name": Path(spec).name,
            "path": spec,
            "stage2": ARGS.stage2,
            "source": "a .keras file given to the service",
        }
    card = dict(catalog.card(spec))
    where, location = catalog.locate(spec)
    if where == "folder" and (location / "metrics.json").is_file():
        card["metrics_json"] = json.loads((location / "metrics.json").read_text())
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
        with Image.open(path, formats=("PNG", "JPEG")) as picture:
            width, height = picture.size  # from the header: nothing is decoded yet
            if width * height > MAX_PIXELS:
                raise InvalidArgument(
                    f"image: {width}x{height} pixels is over the limit of {MAX_PIXELS} pixels"
                )
            if getattr(picture, "n_frames", 1) > 1:
                raise InvalidArgument("image: animated or multi-frame images are not accepted")
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
    except Image.DecompressionBombError as error:
        raise InvalidArgument(
            f"image: the header declares more pixels than the limit of {MAX_PIXELS} pixels"
        ) from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InvalidArgument(
            f"image: cannot decode the upload as a PNG or JPEG image ({type(error).__name__})"
        ) from error
    return pixels.astype(np.float32) / 255.0


def given_latents(z, dim):
    """The request's latents as float32 (n, dim), checked: 1 to MAX_IMAGES
    rows of `dim` finite numbers."""
    if not 1 <= len(z) <= MAX_IMAGES:
        raise InvalidArgument(f"z: give 1 to {MAX_IMAGES} rows of {dim} numbers")
    for row in z:
        if len(row) != dim:
            raise InvalidArgument(
                f"z: each row must hold {dim} numbers (the model's latent length), got {len(row)}"
            )
    latents = np.asarray(z, dtype=np.float64)
    if not (np.abs(latents) <= MAX_ABS_LATENT).all():
        raise InvalidArgument(
            f"z: every number must be finite, from -{MAX_ABS_LATENT:g} to {MAX_ABS_LATENT:g}"
        )
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


async def call_decoder(method, latents):
    """`method(latents)` on the Decoder, tried DECODER_ATTEMPTS times when
    the connection fails. BentoML 1.4's aiohttp client for a dependency keeps
    pooled connections longer than the server does (bentoml/BentoML#4971):
    a reused connection then either drops, which aiohttp raises as a
    ClientConnectionError, or, as measured here (benchmarks/serve_soak.py,
    1 request in 10,000), never answers until the client's 121 s timeout.
    Each attempt is therefore bounded by DECODE_ATTEMPT_SECONDS, far above a
    decode (well under a second on a CPU) and the batcher's latency bound;
    decoding is idempotent, so a failed attempt is simply repeated. When
    every attempt fails the request gets a 503 (retry later), not a 500."""
    for attempt in range(DECODER_ATTEMPTS):
        try:
            with anyio.fail_after(DECODE_ATTEMPT_SECONDS):
                return np.asarray(await method(latents), np.float32)
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            if attempt == DECODER_ATTEMPTS - 1:
                raise ServiceUnavailable(
                    f"decoder: no answer in {DECODER_ATTEMPTS} attempts ({type(error).__name__})"
                ) from error
            logging.getLogger("kvae.serving").warning(
                "decoder call %d of %d failed (%s); trying again",
                attempt + 1,
                DECODER_ATTEMPTS,
                type(error).__name__,
            )


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
Seed = t.Annotated[int, IntegerOnly, pydantic.Field(ge=0, le=MAX_SEED)]
Stage = t.Annotated[int, IntegerOnly]
ImageCount = t.Annotated[int, IntegerOnly, pydantic.Field(ge=1, le=MAX_IMAGES)]
Temperature = t.Annotated[float, NumberOnly, pydantic.Field(ge=0.0, le=MAX_TEMPERATURE)]
Latents = list[list[t.Annotated[float, NumberOnly]]]
Upload = t.Annotated[Path, bentoml.validators.ContentType("image/*")]


@bentoml.service(name="kvae", workers=1, threads=FRONT_THREADS, traffic={"timeout": 120})
class KVAE:
    """encode, reconstruct, mean-generate, sample-generate (module docstring)."""

    decoder = bentoml.depends(Decoder)

    def __init__(self):
        self.model = load_model(ARGS.model, ARGS.stage2)
        self.data_shape = self.model.data_shape
        MODEL_FACTS.update(
            stages=list(self.model.stages),
            latent_dims={stage: self.model.latent_dim_of(stage) for stage in self.model.stages},
        )

    # image in -------------------------------------------------------------------

    @bentoml.api(route="/encode")
    def encode(self, image: Upload, sample: Flag = False, seed: Seed | None = None) -> dict:
        """mu and log sigma of q(z|x) for the uploaded image; with
        `sample`, also z = mu + sigma * eps (eps from `seed`)."""
        x = read_upload(image, self.data_shape)[None]
        mu, log_sigma = self.model.encode(x)
        result = {"mu": mu[0].tolist(), "log_sigma": log_sigma[0].tolist()}
        if sample:
            result["z"] = self.model.sample_posterior(mu, log_sigma, seed)[0].tolist()
        return result

    @bentoml.api(route="/reconstruct")
    async def reconstruct(
        self, image: Upload, sample: Flag = False, seed: Seed | None = None
    ) -> Image.Image:
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
        seed: Seed | None = None,
        stage: Stage | None = None,
        temperature: Temperature = 1.0,
        z: Latents | None = None,
        format: Format = "png",
    ) -> bytes:
        """Decoder means at latents from the prior (n, seed, temperature;
        through stage 2 when the model has it), or at the given stage-1
        latents `z` (n is then their count; stage 2 makes them stage-2
        latents)."""
        return await self._generate("mean", n, seed, stage, temperature, z, format)

    @bentoml.api(route="/sample-generate")
    async def sample_generate(
        self,
        n: ImageCount = 16,
        seed: Seed | None = None,
        stage: Stage | None = None,
        temperature: Temperature = 1.0,
        z: Latents | None = None,
        format: Format = "png",
    ) -> bytes:
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
            return await call_decoder(method, latents)
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


# -- what the routes return, for the OpenAPI document (/docs.json) ---------------------

ERROR_RESPONSES = {
    400: "a client mistake: the body names the field and the rule",
    401: "a token is configured and the request did not send it",
    413: "the body or the image is over its limit",
    429: "more than max_concurrency requests in progress; retry later",
    500: "a server fault (the server log has the traceback)",
    503: "the decoder's batch could not take the request in time; retry later",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "'<field>: <rule>', or the reason"},
        "field": {"type": "string", "nullable": True, "description": "the field at fault"},
    },
    "required": ["error", "field"],
}
_NUMBERS = {"type": "array", "items": {"type": "number"}}
_PNG = {"schema": {"type": "string", "format": "binary"}}
_GENERATED_JSON = {
    "schema": {
        "anyOf": [
            {
                "type": "object",
                "description": "format=json: one base64 PNG per image",
                "properties": {
                    "images": {"type": "array", "items": {"type": "string"}},
                    "media_type": {"type": "string", "enum": ["image/png"]},
                },
                "required": ["images", "media_type"],
            },
            {
                "type": "object",
                "description": "a model of vectors (manifold2d): the numbers",
                "properties": {"samples": {"type": "array", "items": _NUMBERS}},
                "required": ["samples"],
            },
        ]
    }
}
SUCCESS_CONTENT = {
    "/encode": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"mu": _NUMBERS, "log_sigma": _NUMBERS, "z": _NUMBERS},
                "required": ["mu", "log_sigma"],
            }
        }
    },
    "/reconstruct": {"image/png": _PNG},
    "/mean-generate": {"image/png": _PNG, "application/json": _GENERATED_JSON},
    "/sample-generate": {"image/png": _PNG, "application/json": _GENERATED_JSON},
}
"""The 200 answers of each route: a PNG for format=png (the default), JSON
for format=json."""


MODEL_FACTS = {}
"""What the OpenAPI document says of the served model (its stages and latent
lengths), filled when the front service loads it."""


def _request_rules(schema, route):
    """The request schema of a route with the rules the service enforces:
    no unknown fields, null for an optional parameter, the model's stages
    and latent lengths."""
    schema["additionalProperties"] = False
    properties = schema.get("properties", {})
    for spec in properties.values():
        if "default" in spec and spec["default"] is None:
            spec["nullable"] = True
    stages = MODEL_FACTS.get("stages") or [1, 2]
    if "stage" in properties:
        properties["stage"]["enum"] = stages + [None]
    if "z" in properties:
        properties["z"].update(minItems=1, maxItems=MAX_IMAGES)
        properties["z"]["items"]["items"].update(minimum=-MAX_ABS_LATENT, maximum=MAX_ABS_LATENT)
        dims = set((MODEL_FACTS.get("latent_dims") or {}).values())
        if len(dims) == 1:
            (dim,) = dims
            properties["z"]["items"].update(minItems=dim, maxItems=dim)
    return schema


def openapi_patch(document):
    """The OpenAPI document with every route's real requests and answers:
    the rules of its parameters (`_request_rules`), its 200 content types
    and the error body of every error status."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["KvaeError"] = ERROR_SCHEMA
    errors = {
        str(status): {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KvaeError"}}},
        }
        for status, text in ERROR_RESPONSES.items()
    }
    for route, content in SUCCESS_CONTENT.items():
        post = document.get("paths", {}).get(route, {}).get("post")
        if post is None:
            continue
        post["responses"] = {"200": {"description": "OK", "content": content}, **errors}
        body = post.get("requestBody", {})
        for media in body.get("content", {}).values():
            _request_rules(media.get("schema", {}), route)
        if "multipart/form-data" in body.get("content", {}):
            body["required"] = True
    return document


def guarded_routes():
    """{route: ("form" | "json", parameter names)} of the service's APIs;
    a form's file field comes first."""
    routes = {}
    for api in KVAE.apis.values():
        fields = list(api.input_spec.model_fields)
        if "image" in fields:
            routes[api.route] = ("form", ["image"] + [f for f in fields if f != "image"])
        else:
            routes[api.route] = ("json", fields)
    return routes


logging.getLogger("bentoml._internal.server.http_app").addFilter(QuietClientErrors())
# The first middleware added is the outermost: the guard sees every request,
# /models included.
KVAE.add_asgi_middleware(
    Guard,
    routes=guarded_routes(),
    limits={
        "max_json_bytes": MAX_JSON_BYTES,
        "max_form_bytes": MAX_FORM_BYTES,
        "max_concurrency": ARGS.max_concurrency,
        "batch_latency_ms": BATCH_LATENCY_MS,
    },
    token=ARGS.token,
    openapi=openapi_patch,
)
KVAE.add_asgi_middleware(ModelsRoute)
