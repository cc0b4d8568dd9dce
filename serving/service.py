"""HTTP API over kvae models (BentoML 1.4).

    bentoml serve                                   # from the repository root: bentofile.yaml
    bentoml serve serving.service:KVAE --arg model=fmnist_mse
    KVAE_MODEL=path/to/stage1.keras bentoml serve serving.service:KVAE

The model is anything `kvae.load` reads: a zoo name (default
`fmnist_two_stage_computed`), a preset folder, a Hub handle
`hf://OWNER/NAME@COMMIT` (with HF_HUB_OFFLINE=1 for an image whose cache was
filled at build time), or the path of a stage-1 `.keras` file (with `--arg
stage2=path` for its second stage), chosen by `--arg model=...` or
$KVAE_MODEL. It is loaded once, float32, on the CPU, and decodes through
the compiled decoders of `kvae.generation` (warmed at start-up).

Routes (README.md's Serve section has examples, docs/serving.md the rules;
/docs.json the full schema):
- POST /encode           multipart `image` (PNG or JPEG) [, `sample`, `seed`]
                         -> JSON mu, log_sigma (and z when sample is true);
- POST /reconstruct      multipart `image` [, `sample`, `seed`] -> PNG;
- POST /mean-generate    JSON {"n", "seed", "stage", "temperature"} or {"z": [[...]]}
                         [, "format": "png" | "json"] -> decoder means, a PNG grid or
                         JSON with one base64 PNG per image and the latents z (and u);
- POST /sample-generate  the same, drawing each image from p(x|z);
- POST /interpolate      JSON {"start", "end", "steps", "path", "stage"} -> the decoder
                         means along a linear or spherical path between two latents;
- POST /traverse         JSON {"z", "indices", "steps", "span", "stage"} -> one row per
                         latent index, that latent swept around z;
- GET  /models           the loaded model's card and metrics;
- BentoML's /livez, /readyz, /metrics, /docs.json and the Swagger UI at /.

One process serves everything. Concurrent decodes are batched in it
(serving/batcher.py): whatever requests wait are decoded together while
the previous batch runs. The random numbers of a request (its latents and
its pixel noise) come from its own seed with NumPy, following
`kvae.generation.protocol`, so an image depends on the request only, never
on which requests shared its batch, and equals what
`kvae.zoo.load(name).generate(n, seed=...)` gives. `--arg batching=false`
decodes each request alone (for comparison; benchmarks/serve_load.py).

Hardening (serving/guard.py, serving/inputs.py): every client mistake gets
a 4xx whose body is `{"error": "<field>: <rule>", "field": "<field>"}` and
one log line without a traceback. Overload is explicit: more than
`max_concurrency` requests in progress get a 429, a request that cannot
start decoding within BATCH_LATENCY_MS a 503. With a token (`--arg
token=...` or $KVAE_API_TOKEN) every route but /livez and /readyz needs
`Authorization: Bearer <token>` (401 otherwise).
"""

import logging
import os
from pathlib import Path

import bentoml
import pydantic
from bentoml.exceptions import InvalidArgument
from PIL import Image
from starlette.staticfiles import StaticFiles

from kvae import catalog, latent_paths, quiet
from serving import inputs, openapi
from serving.batcher import timed
from serving.guard import Guard, QuietClientErrors
from serving.inputs import (
    Flag,
    Format,
    ImageCount,
    Indices,
    Latent,
    Latents,
    Path_,
    Seed,
    Span,
    Stage,
    Steps,
    Temperature,
    Upload,
)
from serving.model import ModelsRoute, model_card
from serving.outputs import answer

DEFAULT_MODEL = catalog.DEFAULT_MODEL
MODEL_ENV = "KVAE_MODEL"
MAX_CONCURRENCY = 128
"""Default bound on requests in progress (429 beyond)."""
BATCH_LATENCY_MS = 2000
"""The longest a request waits for its decode to start (503 beyond)."""
HOST = "127.0.0.1"
"""The address `bentoml serve` binds by default: loopback only, so a server
is private until its owner chooses otherwise (`bentoml serve --host
0.0.0.0`, or $BENTOML_HOST, best with a token: $KVAE_API_TOKEN)."""


class ServiceArgs(pydantic.BaseModel):
    """`bentoml serve --arg key=value`; without one, $KVAE_MODEL,
    $KVAE_STAGE2, $KVAE_BATCHING and $KVAE_MAX_CONCURRENCY, then the
    defaults."""

    model: str = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    stage2: str | None = os.environ.get("KVAE_STAGE2") or None
    batching: bool = os.environ.get("KVAE_BATCHING", "true").lower() not in ("0", "false", "no")
    max_concurrency: int = int(os.environ.get("KVAE_MAX_CONCURRENCY") or MAX_CONCURRENCY)
    token: str | None = os.environ.get("KVAE_API_TOKEN") or None


ARGS = bentoml.use_arguments(ServiceArgs)


@bentoml.service(name="kvae", workers=1, traffic={"timeout": 120}, http={"host": HOST})
class KVAE:
    """encode, reconstruct, mean-generate, sample-generate, interpolate,
    traverse (module docstring)."""

    def __init__(self):
        from serving.engine import Engine  # loads Keras: not in BentoML's supervisor process

        quiet.start_backend()
        self.engine = Engine(
            ARGS.model, ARGS.stage2, ARGS.batching, inputs.MAX_IMAGES, BATCH_LATENCY_MS / 1000
        )
        self.model = self.engine.model
        self.data_shape = self.engine.data_shape

    # image in -------------------------------------------------------------------

    @bentoml.api(route="/encode")
    async def encode(self, image: Upload, sample: Flag = False, seed: Seed | None = None) -> dict:
        """mu and log sigma of q(z|x) for the uploaded image; with
        `sample`, also z = mu + sigma * eps (eps from `seed`)."""
        mu, log_sigma = await self._encode(image)
        result = {"mu": mu[0].tolist(), "log_sigma": log_sigma[0].tolist()}
        if sample:
            result["z"] = self.engine.posterior_draw(mu, log_sigma, seed)[0].tolist()
        return result

    @bentoml.api(route="/reconstruct")
    async def reconstruct(
        self, image: Upload, sample: Flag = False, seed: Seed | None = None
    ) -> Image.Image:
        """The decoder mean at z = mu (or at a sampled z), as a PNG."""
        mu, log_sigma = await self._encode(image)
        z = self.engine.posterior_draw(mu, log_sigma, seed) if sample else mu
        return await self._decoded(1, "png", latents=z)

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

    # latent paths -------------------------------------------------------------------

    @bentoml.api(route="/interpolate")
    async def interpolate(
        self,
        start: Latent,
        end: Latent,
        steps: Steps = 8,
        path: Path_ = "linear",
        stage: Stage | None = None,
        format: Format = "png",
    ) -> bytes:
        """Decoder means at `steps` latents from `start` to `end` (stage-1
        latents, or stage-2 ones with stage 2), on a linear or spherical
        path (`kvae.latent_paths.interpolate`), as one row."""
        stage = self._stage(stage, given=True)
        dim = self.engine.latent_dim_of(stage)
        ends = [
            inputs.given_point(point, dim, name) for name, point in (("start", start), ("end", end))
        ]
        latents = latent_paths.interpolate(*ends, steps, path)
        return await self._decoded(stage, format, latents, columns=steps)

    @bentoml.api(route="/traverse")
    async def traverse(
        self,
        z: Latent,
        indices: Indices | None = None,
        steps: Steps = 7,
        span: Span = 3.0,
        stage: Stage | None = None,
        format: Format = "png",
    ) -> bytes:
        """One row per latent index (all by default), that latent swept
        from z - span to z + span in `steps` columns, the others held at z
        (`kvae.latent_paths.traverse`)."""
        stage = self._stage(stage, given=True)
        dim = self.engine.latent_dim_of(stage)
        point = inputs.given_point(z, dim, "z")
        chosen = inputs.given_indices(range(dim) if indices is None else indices, dim, "indices")
        if len(chosen) * steps > inputs.MAX_IMAGES:
            raise InvalidArgument(
                f"indices: {len(chosen)} latents of {steps} steps is over the limit of "
                f"{inputs.MAX_IMAGES} images; choose fewer indices or steps"
            )
        latents = latent_paths.traverse(point, chosen, steps, span)
        return await self._decoded(stage, format, latents, columns=steps)

    # private helpers (never call an API method from an API: it deadlocks served) -------

    async def _encode(self, image):
        pixels = inputs.read_upload(image, self.data_shape, self.engine.background)
        return await self.engine.encode(pixels[None])

    def _stage(self, stage, given):
        """The stage a request decodes with: as asked, else stage 1 for
        given latents (as /encode returns them) and the last stage for
        prior draws."""
        stages = self.engine.stages
        if stage is None:
            return 1 if given else stages[-1]
        if stage not in stages:
            raise InvalidArgument(
                f"stage: this model generates with stage "
                f"{' or '.join(map(str, stages))}, not {stage}"
            )
        return stage

    async def _generate(self, mode, n, seed, stage, temperature, z, format):
        """/mean-generate and /sample-generate: prior draws or given z."""
        stage = self._stage(stage, given=z is not None)
        latents = (
            inputs.given_latents(z, self.engine.latent_dim_of(stage)) if z is not None else None
        )
        return await self._decoded(stage, format, latents, n, mode, seed, temperature)

    async def _decoded(
        self, stage, format, latents=None, n=None, mode="mean", seed=None, temperature=1.0,
        columns=None,
    ):  # fmt: skip
        """Generate (`Engine.generate`) and answer with the images and the
        latents of each decode (z, and u for stage 2)."""
        images, decoded = await self.engine.generate(stage, latents, n, mode, seed, temperature)
        with timed("answer"):
            return answer(images, self.data_shape, format, columns, decoded)


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


def served_openapi(document):
    """/docs.json for the model this process serves."""
    return openapi.patch(document, bentoml.get_current_service().model)


logging.getLogger("bentoml._internal.server.http_app").addFilter(QuietClientErrors())
# The first middleware added is the outermost: the guard sees every request,
# /models included.
KVAE.add_asgi_middleware(
    Guard,
    routes=guarded_routes(),
    limits={
        "max_json_bytes": inputs.MAX_JSON_BYTES,
        "max_form_bytes": inputs.MAX_FORM_BYTES,
        "max_concurrency": ARGS.max_concurrency,
        "batch_latency_ms": BATCH_LATENCY_MS,
    },
    token=ARGS.token,
    openapi=served_openapi,
)
KVAE.add_asgi_middleware(ModelsRoute, card=lambda: model_card(ARGS.model, ARGS.stage2))
PLAYGROUND = Path(__file__).parent / "playground"
"""The browser playground: static files that call the API above (issue 32)."""
KVAE.mount_asgi_app(StaticFiles(directory=PLAYGROUND, html=True), path="/playground")
