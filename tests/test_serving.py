"""The BentoML service: every endpoint and every bad input through an
in-process ASGI client (a tiny two-stage model made here), checked against
the models' own outputs; then the real `bentoml serve` of the default zoo
model, called over plain HTTP from concurrent clients."""

import base64
import functools
import hashlib
import importlib
import io
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import keras
import numpy as np
import pytest
from PIL import Image

import kvae
from helpers import random_images, tiny_resnet
from kvae import images as image_utils
from real_servers import EMOJI_MODEL, TOKEN_HEADERS, serving_default

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore::Warning")  # BentoML's pydantic deprecations


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def decode_png(content):
    return np.asarray(Image.open(io.BytesIO(content)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny 8x8 grey stage 1 (4 latents) and a stage 2 on its latents,
    trained one epoch, saved as the service will load them."""
    folder = tmp_path_factory.mktemp("serving")
    stage1 = tiny_resnet("computed", seed=1)
    stage1.compile()
    stage1.fit(random_images(64), batch_size=16, epochs=1, verbose=0)
    stage2 = kvae.VAE((4,), 4, net="stage2", net_config={"second_dim": 16}, gamma="learned")
    stage2.compile()
    stage2.fit(
        np.random.default_rng(0).normal(size=(64, 4)).astype("float32"),
        batch_size=16,
        epochs=1,
        verbose=0,
    )
    paths = folder / "stage1.keras", folder / "stage2.keras"
    stage1.save(paths[0])
    stage2.save(paths[1])
    return [kvae.load(path, compile=False) for path in paths], paths


@pytest.fixture(scope="module")
def client(models):
    from starlette.testclient import TestClient

    _, (stage1_path, stage2_path) = models
    os.environ.update(
        {
            "KVAE_MODEL": str(stage1_path),
            "KVAE_STAGE2": str(stage2_path),
            "BENTOML_DO_NOT_TRACK": "true",
        }
    )
    try:
        import serving.service as service

        service = importlib.reload(service)  # read the environment above
        with TestClient(service.KVAE.to_asgi()) as test_client:
            yield test_client
    finally:
        for key in ("KVAE_MODEL", "KVAE_STAGE2"):
            os.environ.pop(key, None)


def test_encode_returns_the_posterior_of_the_uploaded_image(client, models):
    (stage1, _), _ = models
    pixels = (np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)
    response = client.post(
        "/encode",
        files={"image": ("x.png", png(pixels), "image/png")},
        data={"sample": "true", "seed": "7"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    mu, log_sigma = (
        keras.ops.convert_to_numpy(t)
        for t in stage1.encode(pixels[None, ..., None].astype("float32") / 255)
    )
    np.testing.assert_allclose(body["mu"], mu[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(body["log_sigma"], log_sigma[0], rtol=1e-5, atol=1e-6)
    eps = np.random.default_rng(7).standard_normal(mu.shape, dtype=np.float32)
    np.testing.assert_allclose(body["z"], (mu + np.exp(log_sigma) * eps)[0], rtol=1e-5, atol=1e-6)
    plain = client.post("/encode", files={"image": ("x.png", png(pixels), "image/png")}).json()
    assert "z" not in plain and plain["mu"] == body["mu"]


def test_encode_converts_and_resizes_jpeg_and_colour_uploads(client, models):
    """A 20x30 colour JPEG reaches the 8x8 grey model as PIL makes it: grey,
    the centred 20x20 square, resized with the antialiased bilinear filter."""
    (stage1, _), _ = models
    colour = (np.random.default_rng(1).random((20, 30, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(colour).save(buffer, "JPEG")
    response = client.post("/encode", files={"image": ("x.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    grey = Image.open(io.BytesIO(buffer.getvalue())).convert("L").crop((5, 0, 25, 20))
    x = np.asarray(grey.resize((8, 8), Image.BILINEAR), np.float32)[None, ..., None] / 255
    mu, log_sigma = (keras.ops.convert_to_numpy(t) for t in stage1.encode(x))
    np.testing.assert_allclose(body["mu"], mu[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(body["log_sigma"], log_sigma[0], rtol=1e-5, atol=1e-5)


def test_reconstruct_returns_the_decoder_mean_as_png(client, models):
    (stage1, _), _ = models
    pixels = (np.random.default_rng(2).random((8, 8)) * 255).astype(np.uint8)
    response = client.post("/reconstruct", files={"image": ("x.png", png(pixels), "image/png")})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    expected = image_utils.to_uint8(stage1.reconstruct(pixels[None, ..., None] / 255.0))[0, ..., 0]
    got = decode_png(response.content)
    assert got.shape == (8, 8) and np.abs(got.astype(int) - expected).max() <= 1
    sampled = client.post(
        "/reconstruct",
        files={"image": ("x.png", png(pixels), "image/png")},
        data={"sample": "true", "seed": "1"},
    )
    assert sampled.status_code == 200 and sampled.content != response.content


def _expected_generation(models, n, seed, mode, stage, temperature=1.0):
    """The generation protocol, recomputed: one NumPy generator per request
    draws the float32 latents, then (stage 2) the gamma_z noise, then
    (sample mode) the pixel noise."""
    (stage1, stage2), _ = models
    rng = np.random.default_rng(seed)
    dim = 4
    latents = rng.standard_normal((n, dim), dtype=np.float32) * np.float32(temperature)
    if stage == 2:  # a learned stage 2: z = its mean plus gamma_z noise
        z_mean, log_gamma_z = (
            keras.ops.convert_to_numpy(t) for t in stage2.decode_distribution(latents)
        )
        latents = z_mean + np.exp(log_gamma_z) * rng.standard_normal(z_mean.shape, dtype=np.float32)
    mean, log_gamma = (keras.ops.convert_to_numpy(t) for t in stage1.decode_distribution(latents))
    if mode == "sample":
        mean = mean + np.exp(log_gamma) * rng.standard_normal((n, 64), dtype=np.float32).reshape(
            mean.shape
        )
    return image_utils.to_uint8(mean)


@pytest.mark.parametrize("route,mode", [("/mean-generate", "mean"), ("/sample-generate", "sample")])
@pytest.mark.parametrize("stage", [1, 2])
def test_generation_follows_the_seeded_protocol(client, models, route, mode, stage):
    response = client.post(route, json={"n": 5, "seed": 3, "stage": stage, "format": "json"})
    assert response.status_code == 200, response.text
    got = np.stack([decode_png(base64.b64decode(item)) for item in response.json()["images"]])
    expected = _expected_generation(models, 5, 3, mode, stage)[..., 0]
    assert got.shape == (5, 8, 8) and np.abs(got.astype(int) - expected).max() <= 1
    grid = client.post(route, json={"n": 5, "seed": 3, "stage": stage})
    assert grid.headers["content-type"] == "image/png"
    assert decode_png(grid.content).shape == (2 * 10 + 2, 3 * 10 + 2)  # 3 columns, 2 rows
    again = client.post(route, json={"n": 5, "seed": 3, "stage": stage})
    other = client.post(route, json={"n": 5, "seed": 4, "stage": stage})
    assert again.content == grid.content and other.content != grid.content


def test_generation_from_given_latents_and_temperature(client, models):
    (stage1, _), _ = models
    z = np.random.default_rng(5).normal(size=(3, 4)).astype("float32")
    response = client.post("/mean-generate", json={"z": z.tolist(), "format": "json"})
    assert response.status_code == 200, response.text
    got = np.stack([decode_png(base64.b64decode(item)) for item in response.json()["images"]])
    expected = image_utils.to_uint8(stage1.generate_from(z, mode="mean"))[..., 0]
    assert np.abs(got.astype(int) - expected).max() <= 1
    cold = client.post(
        "/mean-generate", json={"n": 2, "seed": 1, "temperature": 0, "stage": 1, "format": "json"}
    ).json()["images"]
    assert cold[0] == cold[1]  # temperature 0: both at z = 0


def _images(response):
    assert response.status_code == 200, response.text
    return np.stack([decode_png(base64.b64decode(item)) for item in response.json()["images"]])


def test_json_answers_carry_the_latents_they_decoded(client, models):
    """format=json returns u (stage 2's prior draws, the protocol's first
    NumPy draws of the seed) and z (the stage-1 latents decoded); posting
    z back to stage 1 gives the same images."""
    body = client.post(
        "/mean-generate", json={"n": 3, "seed": 3, "stage": 2, "format": "json"}
    ).json()
    u = np.random.default_rng(3).standard_normal((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(body["u"], np.float32), u)
    assert np.asarray(body["z"]).shape == (3, 4)
    again = client.post("/mean-generate", json={"z": body["z"], "stage": 1, "format": "json"})
    np.testing.assert_array_equal(
        _images(again), np.stack([decode_png(base64.b64decode(item)) for item in body["images"]])
    )
    stage1 = client.post("/sample-generate", json={"n": 2, "seed": 1, "stage": 1, "format": "json"})
    assert "u" not in stage1.json() and np.asarray(stage1.json()["z"]).shape == (2, 4)


def test_interpolate_and_traverse_decode_their_paths(client, models):
    """/interpolate: its frames are the decoder means at the path's latents
    (the spherical midpoint of orthogonal ends, written out here), its end
    frames the separate generations of its ends; /traverse: one row per
    index, only that latent moving."""
    start, end = [1.5, 0.0, 0.0, 0.0], [0.0, 1.5, 0.0, 0.0]
    frames = client.post(
        "/interpolate",
        json={"start": start, "end": end, "steps": 3, "path": "spherical", "format": "json"},
    )
    z = np.asarray(frames.json()["z"], np.float32)
    np.testing.assert_allclose(z[1], [1.5 / np.sqrt(2), 1.5 / np.sqrt(2), 0, 0], atol=1e-6)
    ends = client.post("/mean-generate", json={"z": [start, end], "format": "json"})
    np.testing.assert_array_equal(_images(frames)[[0, -1]], _images(ends))
    grid = client.post("/interpolate", json={"start": start, "end": end, "steps": 4})
    assert decode_png(grid.content).shape == (1 * 10 + 2, 4 * 10 + 2)  # one row of 4
    traversal = client.post(
        "/traverse",
        json={
            "z": [0.1, 0.2, 0.3, 0.4],
            "indices": [3, 1],
            "steps": 5,
            "span": 2.0,
            "format": "json",
        },
    )
    rows = np.asarray(traversal.json()["z"])
    assert rows.shape == (10, 4) and len(traversal.json()["images"]) == 10
    np.testing.assert_allclose(rows[:5, 3], 0.4 + np.linspace(-2, 2, 5), atol=1e-6)
    np.testing.assert_allclose(rows[5:, 1], 0.2 + np.linspace(-2, 2, 5), atol=1e-6)
    everything = client.post("/traverse", json={"z": [0, 0, 0, 0], "steps": 3})
    assert decode_png(everything.content).shape == (4 * 10 + 2, 3 * 10 + 2)  # 4 latents


@functools.cache
def _good_png():
    return png(np.zeros((8, 8), np.uint8))


@functools.cache
def _multi_frame_png():
    frames = [Image.new("L", (8, 8), value) for value in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


@functools.cache
def _bomb_png():
    """248 KB of PNG that declares 16000x16000 pixels."""
    buffer = io.BytesIO()
    Image.new("L", (16000, 16000)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


JSON = {"content-type": "application/json"}
HOSTILE_JSON = [
    # (route, keyword arguments of the request, status, field)
    ("/mean-generate", {"json": {"n": 0}}, 400, "n"),
    ("/mean-generate", {"json": {"n": 257}}, 400, "n"),
    ("/sample-generate", {"json": {"temperature": -1}}, 400, "temperature"),
    ("/mean-generate", {"json": {"stage": 3}}, 400, "stage"),
    ("/mean-generate", {"json": {"z": [[0.0, 0.0, 0.0]]}}, 400, "z"),
    ("/mean-generate", {"json": {"z": []}}, 400, "z"),
    ("/sample-generate", {"json": {"z": [[0.0] * 4] * 257}}, 400, "z"),
    ("/mean-generate", {"json": {"z": "not a list"}}, 400, "z"),
    ("/mean-generate", {"json": {"format": "gif"}}, 400, "format"),
    ("/mean-generate", {"json": {"seed": "abc"}}, 400, "seed"),
    ("/sample-generate", {"json": {"seed": -166561, "temperature": 1.32}}, 400, "seed"),
    ("/mean-generate", {"json": {"seed": -5, "n": 2}}, 400, "seed"),
    ("/mean-generate", {"json": {"seed": 2**64}}, 400, "seed"),
    ("/mean-generate", {"json": {"seed": 0.0}}, 400, "seed"),
    ("/mean-generate", {"json": {"n": True}}, 400, "n"),
    ("/mean-generate", {"json": {"z": [[0.0] * 4, [False]]}}, 400, "z"),
    ("/mean-generate", {"json": {"z": [[1e300] * 4]}}, 400, "z"),
    ("/mean-generate", {"content": b'{"z": [[NaN, 0, 0, 0]]}', "headers": JSON}, 400, "z"),
    (
        "/mean-generate",
        {"content": b'{"temperature": Infinity}', "headers": JSON},
        400,
        "temperature",
    ),
    ("/mean-generate", {"json": {"n": 2, "bogus": 1}}, 400, "bogus"),
    ("/mean-generate", {"json": [1, 2]}, 400, "body"),
    ("/mean-generate", {"content": b"{", "headers": JSON}, 400, "body"),
    (
        "/mean-generate",
        {"content": b"n=2", "headers": {"content-type": "text/plain"}},
        400,
        "content-type",
    ),
    ("/mean-generate", {"content": b" " * (2 * 2**20 + 1), "headers": JSON}, 413, "body"),
    ("/interpolate", {"json": {"start": [0.0] * 4, "end": [0.0] * 3}}, 400, "end"),
    ("/interpolate", {"json": {"start": [0.0] * 4, "end": [0.0] * 4, "steps": 1}}, 400, "steps"),
    ("/interpolate", {"json": {"start": [0.0] * 4, "end": [0.0] * 4, "path": "x"}}, 400, "path"),
    ("/interpolate", {"json": {"end": [0.0] * 4}}, 400, "start"),
    ("/traverse", {"json": {"z": [0.0] * 4, "indices": [4]}}, 400, "indices"),
    ("/traverse", {"json": {"z": [0.0] * 4, "indices": [1, 1]}}, 400, "indices"),
    ("/traverse", {"json": {"z": [0.0] * 4, "span": 0}}, 400, "span"),
    ("/traverse", {"json": {"z": [0.0] * 4, "steps": 65}}, 400, "steps"),
    ("/traverse", {"json": {"z": [0.0] * 4, "stage": 3}}, 400, "stage"),
]
"""Generation requests a stranger may send, with the status and the field
the answer must name."""

MULTIPART = {"content-type": "multipart/form-data"}
HOSTILE_UPLOADS = [
    ({"files": {"image": ("x.png", b"not an image at all", "image/png")}}, 400),
    ({"files": {"image": ("x.gif", "gif", "image/gif")}}, 400),
    ({"files": {"image": ("x.png", "huge", "image/png")}}, 413),
    ({"files": {"image": ("x.txt", b"hello", "text/plain")}}, 400),
    ({"files": {"image": ("x.png", "bomb", "image/png")}}, 400),
    ({"files": {"image": ("x.png", "truncated", "image/png")}}, 400),
    ({"files": {"image": ("x.png", "frames", "image/png")}}, 400),
    ({"content": b"--x--", "headers": MULTIPART}, 400),  # no boundary
    ({"data": {"image": "[{}]"}}, 400),  # a url-encoded form
    ({"files": [("image", (None, "http://127.0.0.1:1/x.png"))]}, 400),  # a text part
    ({"files": [("image", ("x.png", "good", "image/png"))] * 2}, 400),
    ({"json": {"image": "x"}}, 400),
    ({"data": {"sample": "false"}, "files": {"other": ("x.png", "good", "image/png")}}, 400),
    (
        {
            "data": {"seed": "-3", "sample": "true"},
            "files": {"image": ("x.png", "good", "image/png")},
        },
        400,
    ),
    ({"data": {"sample": "0"}, "files": {"image": ("x.png", "good", "image/png")}}, 400),
    ({"data": {"seed": ["1", "2"]}, "files": {"image": ("x.png", "good", "image/png")}}, 400),
]
"""Uploads a stranger may send to /encode and /reconstruct; every answer
names the field `image`, except the seed's, which names `seed`, and the
unknown part's."""

_CONTENT = {
    "gif": lambda: _gif(),
    "huge": functools.lru_cache(maxsize=None)(
        lambda: png((np.random.default_rng(0).random((1300, 1300, 3)) * 255).astype(np.uint8))
    ),
    "bomb": _bomb_png,
    "truncated": lambda: _good_png()[:40],
    "frames": _multi_frame_png,
    "good": _good_png,
}


@functools.cache
def _gif():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "GIF")
    return buffer.getvalue()


def _materialize(request):
    """Replace the placeholders of HOSTILE_UPLOADS by file contents."""
    request = dict(request)
    files = request.get("files")
    if isinstance(files, dict):
        files = list(files.items())
    if files is not None:
        request["files"] = [
            (name, (part[0], _CONTENT[part[1]]() if part[1] in _CONTENT else part[1], *part[2:]))
            for name, part in files
        ]
    return request


def _expected_field(request):
    files = request.get("files")
    if isinstance(files, dict) and "other" in files:
        return "other"
    for name in ("seed", "sample"):
        if name in request.get("data", {}):
            return name
    return "image"


@pytest.mark.parametrize("route,request_kwargs,status,field", HOSTILE_JSON)
def test_hostile_generation_requests_get_a_4xx_naming_the_field(
    client, route, request_kwargs, status, field
):
    response = client.post(route, **request_kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field and body["error"].startswith(f"{field}: "), body
    assert client.post("/mean-generate", json={"n": 1}).status_code == 200  # still serving


@pytest.mark.parametrize("request_kwargs,status", HOSTILE_UPLOADS)
@pytest.mark.parametrize("route", ["/encode", "/reconstruct"])
def test_hostile_uploads_get_a_4xx_naming_the_field(client, route, request_kwargs, status):
    response = client.post(route, **_materialize(request_kwargs))
    assert response.status_code == status, response.text
    field = _expected_field(request_kwargs)
    body = response.json()
    assert body["field"] == field and body["error"].startswith(f"{field}: "), body
    ok = client.post(route, files={"image": ("x.png", _good_png(), "image/png")})
    assert ok.status_code == 200


def test_limits_are_named_in_the_answers(client):
    bomb = client.post("/encode", files={"image": ("x.png", _bomb_png(), "image/png")})
    assert str(16777216) in bomb.json()["error"]  # MAX_PIXELS, from the header
    frames = client.post("/encode", files={"image": ("x.png", _multi_frame_png(), "image/png")})
    assert "animated" in frames.json()["error"]
    seed = client.post("/mean-generate", json={"seed": -1})
    assert "greater than or equal to 0" in seed.json()["error"]
    assert client.post("/mean-generate", json={"seed": 2**64 - 1, "n": 1}).status_code == 200


def test_client_errors_log_one_line_without_a_traceback(client, caplog):
    with caplog.at_level(logging.INFO):
        client.post("/mean-generate", json={"seed": -5})  # BentoML's validation
        client.post("/mean-generate", json={"stage": 3})  # the service's own check
        client.post("/mean-generate", json={"bogus": 1})  # the guard
    errors = [record for record in caplog.records if "client error 400" in record.getMessage()]
    assert len(errors) == 3, [record.getMessage() for record in caplog.records]
    for record in errors:
        assert record.exc_info is None and record.levelno == logging.WARNING
        assert "\n" not in record.getMessage()
    assert [r for r in errors if "seed" in r.getMessage()]


def test_the_guard_answers_429_beyond_max_concurrency_and_413_on_long_streams():
    """The guard alone around a slow app: two requests in progress, the third
    gets a 429 with Retry-After; once they finish, requests pass again. A
    chunked body without Content-Length is cut at the limit with a 413."""
    import asyncio

    from starlette.responses import JSONResponse

    from serving.guard import Guard

    async def scenario():
        release = asyncio.Event()

        async def slow(scope, receive, send):
            await release.wait()
            await JSONResponse({"ok": True})(scope, receive, send)

        limits = {
            "max_json_bytes": 1000,
            "max_form_bytes": 1000,
            "max_concurrency": 2,
            "batch_latency_ms": 1,
        }
        guard = Guard(slow, {"/slow": ("json", ["n"])}, limits)
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded") as client:
            running = [asyncio.create_task(client.post("/slow", json={"n": 1})) for _ in range(2)]
            await asyncio.sleep(0.2)
            refused = await client.post("/slow", json={"n": 1})
            release.set()
            finished = await asyncio.gather(*running)
            again = await client.post("/slow", json={"n": 1})

            async def chunks():
                for _ in range(5):
                    yield b" " * 300

            streamed = await client.post(
                "/slow", content=chunks(), headers={"content-type": "application/json"}
            )
        return refused, finished, again, streamed

    refused, finished, again, streamed = asyncio.run(scenario())
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["field"] is None and "more than 2 requests" in refused.json()["error"]
    assert [response.status_code for response in finished] == [200, 200]
    assert again.status_code == 200
    assert streamed.status_code == 413 and streamed.json()["field"] == "body"


def test_the_batcher_decodes_waiting_requests_together_and_each_gets_its_rows():
    """serving/batcher.py with a recording decode: a lone request is
    decoded at once; requests that arrive while it decodes go together in
    the next call, at most max_rows rows; each gets back its own rows, and
    a member without a row axis (a scalar log gamma) whole."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from serving.batcher import Batcher

    calls = []

    def decode(rows):
        calls.append(len(rows))
        time.sleep(0.1)
        return rows * 2.0, np.float32(-1.0)

    async def scenario(executor):
        batcher = Batcher(decode, executor, max_rows=8, max_wait_s=10.0)
        first = asyncio.create_task(batcher(np.full((1, 2), 100.0)))
        await asyncio.sleep(0.02)  # the first decode is running
        rest = [asyncio.create_task(batcher(np.full((k, 2), float(k)))) for k in (1, 2, 3, 4)]
        return await first, await asyncio.gather(*rest), batcher

    with ThreadPoolExecutor(1) as executor:
        first, rest, batcher = asyncio.run(scenario(executor))
    assert calls == [1, 6, 4]  # 1 alone; then 1 + 2 + 3 (4 more would pass 8); then 4
    assert batcher.batches == 3 and batcher.rows == 11
    np.testing.assert_array_equal(first[0], np.full((1, 2), 200.0))
    for k, (rows, log_gamma) in zip((1, 2, 3, 4), rest):
        np.testing.assert_array_equal(rows, np.full((k, 2), 2.0 * k))
        assert log_gamma == -1.0


def test_the_batcher_answers_503_when_a_request_waited_too_long_and_shares_failures():
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import bentoml

    from serving.batcher import Batcher

    def slow(rows):
        time.sleep(0.3)
        if (rows < 0).any():
            raise RuntimeError("a decode failed")
        return rows

    async def scenario(executor):
        batcher = Batcher(slow, executor, max_rows=256, max_wait_s=0.1)
        first = asyncio.create_task(batcher(np.zeros((1, 1))))
        await asyncio.sleep(0.02)
        late = asyncio.create_task(batcher(np.zeros((1, 1))))  # waits 0.28 s > 0.1 s
        results = await asyncio.gather(first, late, return_exceptions=True)
        failing = [asyncio.create_task(batcher(np.full((1, 1), v))) for v in (-1.0, 1.0)]
        return results, await asyncio.gather(*failing, return_exceptions=True)

    with ThreadPoolExecutor(1) as executor:
        (first, late), failing = asyncio.run(scenario(executor))
    np.testing.assert_array_equal(first, np.zeros((1, 1)))
    assert isinstance(late, bentoml.exceptions.ServiceUnavailable)
    assert "retry later" in str(late)
    # one decode of both rows failed: both requests get its error
    assert all(isinstance(result, RuntimeError) for result in failing)


def test_models_health_and_openapi(client, models):
    _, (stage1_path, _) = models
    card = client.get("/models", follow_redirects=False)
    assert card.status_code == 200 and card.json()["path"] == str(stage1_path)
    assert client.post("/models").status_code == 405
    assert client.get("/livez").status_code == 200 and client.get("/readyz").status_code == 200
    paths = client.get("/docs.json").json()["paths"]
    for route in ("/encode", "/reconstruct", "/mean-generate", "/sample-generate"):
        assert route in paths


def _guard_of(app):
    """The Guard instance inside a built ASGI app (middlewares wrap `.app`)."""
    from serving.guard import Guard

    layer = getattr(app, "middleware_stack", None) or app
    for _ in range(64):
        if isinstance(layer, Guard):
            return layer
        layer = getattr(layer, "app", None)
    raise AssertionError("no Guard in the app")


def test_a_token_guards_every_route_but_the_probes(client, monkeypatch):
    """With a token configured ($KVAE_API_TOKEN or --arg token=, read into
    the service's Guard), the whole service answers 401 without it on API
    routes, /models, /docs.json and /metrics, and serves with it; /livez
    and /readyz stay open."""
    assert client.post("/mean-generate", json={"n": 1}).status_code == 200  # builds the stack
    monkeypatch.setattr(_guard_of(client.app), "token", "s3cret-token")
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    for method, route in (
        ("POST", "/mean-generate"),
        ("POST", "/encode"),
        ("GET", "/models"),
        ("GET", "/docs.json"),
        ("GET", "/metrics"),
    ):
        refused = client.request(method, route)
        assert refused.status_code == 401, route
        assert refused.json()["field"] == "authorization"
        assert refused.headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer s3cret-tokeN"}
    assert client.post("/mean-generate", headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret-token"}
    answer = client.post("/mean-generate", json={"n": 1}, headers=right)
    assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")
    assert client.get("/models", headers=right).status_code == 200


# -- the real servers (tests/real_servers.py, started once per session) -------------


def _held_out_emoji_png():
    """(PNG bytes as the package ships them, with transparency; the same
    picture prepared as the model's data) of the first held-out emoji of
    the first style whose package is here, or a skip naming what is
    missing."""
    from kvae.data import DataError, emoji
    from kvae.data.emoji import sources

    missing = []
    for style in emoji.STYLES:
        try:
            path = emoji.locate(style, None)
            found = sources.read_style(style, path)
        except DataError as error:
            missing.append(str(error))
            continue
        for code_points, encoded in found:
            if emoji.is_test_key(emoji.emoji_key(code_points)):
                png = io.BytesIO()
                Image.open(io.BytesIO(encoded)).convert("RGBA").save(png, "PNG")
                return png.getvalue(), emoji.prepare(encoded)[1]
    pytest.skip("no emoji package to take an upload from: " + " | ".join(missing))


def test_the_colour_model_is_served_in_rgb(servers):
    """Issue 31: the emoji model behind a real server. /mean-generate gives
    RGB pixels equal to the library's for the seed (PNG grid and JSON);
    /reconstruct of a held-out emoji's prepared 32x32 PNG equals the
    library's reconstruction; a raw package PNG (transparent, 136x128 or
    64x64 or 256x256) is composited on the data's white background, so the
    reconstruction's corners come back white, not black."""
    url = servers["emoji"]
    model = kvae.zoo.load(EMOJI_MODEL)
    expected = image_utils.to_uint8(model.generate(3, mode="mean", seed=5, stage=2))
    response = httpx.post(
        f"{url}/mean-generate", json={"n": 3, "seed": 5, "format": "json"}, timeout=120
    )
    assert response.status_code == 200, response.text
    got = [Image.open(io.BytesIO(base64.b64decode(item))) for item in response.json()["images"]]
    assert [picture.mode for picture in got] == ["RGB"] * 3
    np.testing.assert_array_equal(np.stack([np.asarray(p) for p in got]), expected)
    grid = Image.open(io.BytesIO(httpx.post(f"{url}/mean-generate", json={"n": 4}).content))
    assert grid.mode == "RGB" and np.ptp(np.asarray(grid, "float32").mean(axis=(0, 1))) > 0

    raw_png, prepared = _held_out_emoji_png()
    prepared_png = io.BytesIO()
    Image.fromarray(prepared).save(prepared_png, "PNG")
    answer = httpx.post(
        f"{url}/reconstruct", files={"image": ("e.png", prepared_png.getvalue())}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    reconstruction = np.asarray(Image.open(io.BytesIO(answer.content)))
    assert reconstruction.shape == (32, 32, 3)
    library = image_utils.to_uint8(model.reconstruct(prepared[None].astype("float32") / 255))[0]
    assert np.abs(reconstruction.astype(int) - library.astype(int)).max() <= 1

    answer = httpx.post(f"{url}/reconstruct", files={"image": ("raw.png", raw_png)}, timeout=60)
    assert answer.status_code == 200, answer.text
    corners = np.asarray(Image.open(io.BytesIO(answer.content)), "float32")[
        [0, 0, -1, -1], [0, -1, 0, -1]
    ]
    assert corners.min() > 200, corners


def test_transparent_uploads_take_the_background_of_the_models_data(tmp_path):
    """read_upload composites alpha on the given background: out = alpha *
    colour + (1 - alpha) * background, in NumPy, for grey and RGB models;
    kvae.data.background is white for emoji and black for Fashion-MNIST."""
    from kvae import data
    from serving import inputs

    rgba = np.random.default_rng(0).integers(0, 256, (8, 8, 4)).astype(np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    alpha = rgba[..., 3:] / 255.0
    for background in (data.background("emoji"), data.background("fashion_mnist")):
        expected = alpha * rgba[..., :3] + (1 - alpha) * np.array(background)
        got = inputs.read_upload(path, (8, 8, 3), background) * 255
        np.testing.assert_allclose(got, expected, atol=1.01)
        grey = inputs.read_upload(path, (8, 8, 1), background)[..., 0] * 255
        luma = expected @ np.array([0.299, 0.587, 0.114])
        np.testing.assert_allclose(grey, luma, atol=1.6)
    assert data.background("emoji:noto") == (255, 255, 255)
    assert data.background("fashion_mnist") == data.background(None) == (0, 0, 0)


def test_the_service_and_the_library_give_the_same_images_for_a_seed(servers):
    """Issue 13's acceptance: kvae.zoo.load(name).generate(4, mode, seed=3,
    stage) and POST /{mode}-generate {"n": 4, "seed": 3, "stage", "format":
    "json"} on a really started server give the same pixels, for both
    stages and modes, with batching on (the default model), off (the colour
    model) and from a server given the default model's Hub handle (offline,
    from a cache, behind a token)."""
    served = {
        "batched": (serving_default(), {}),
        "emoji": (EMOJI_MODEL, {}),
        "hub": (serving_default(), TOKEN_HEADERS),
    }
    models = {model_name: kvae.zoo.load(model_name) for model_name, _ in served.values()}
    for name, (model_name, headers) in served.items():
        model = models[model_name]
        for stage in (1, 2):
            for mode in ("mean", "sample"):
                expected = image_utils.to_uint8(model.generate(4, mode=mode, seed=3, stage=stage))
                response = httpx.post(
                    f"{servers[name]}/{mode}-generate",
                    json={"n": 4, "seed": 3, "stage": stage, "format": "json"},
                    headers=headers,
                    timeout=120,
                )
                assert response.status_code == 200, response.text
                got = np.stack(
                    [decode_png(base64.b64decode(item)) for item in response.json()["images"]]
                )
                np.testing.assert_array_equal(
                    got.reshape(expected.shape), expected, err_msg=f"{name} stage {stage} {mode}"
                )


def test_a_server_started_as_the_readme_says_listens_on_loopback_only(servers):
    """Issue 34: `bentoml serve` with no --host (the README's command) binds
    127.0.0.1 (serving.service.HOST), read from the listening sockets of
    the server's processes; the README's set-up line passes no --host."""
    import psutil

    import serving.service

    port = int(servers["batched"].rsplit(":", 1)[1])
    root = psutil.Process(servers["pids"]["batched"])
    listening = {
        connection.laddr
        for process in [root, *root.children(recursive=True)]
        for connection in process.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    }
    assert listening and {address.ip for address in listening} == {"127.0.0.1"}, listening
    assert serving.service.HOST == "127.0.0.1"
    first_block = (ROOT / "README.md").read_text().split("```")[1]
    serve_line = next(line for line in first_block.splitlines() if "bentoml serve" in line)
    assert "--host" not in serve_line and "BENTOML_HOST" not in serve_line


def test_the_hub_server_says_where_its_model_came_from(servers, hub_cache):
    handle, _ = hub_cache
    card = httpx.get(f"{servers['hub']}/models", headers=TOKEN_HEADERS, timeout=30).json()
    assert card["name"] == serving_default() and card["provenance"]["source"] == handle
    assert card["provenance"]["resolved_revision"] == handle.split("@")[1]


def test_the_real_server_serves_the_default_zoo_model(server):
    card = httpx.get(f"{server}/models", timeout=30).json()
    assert card["name"] == "fmnist_two_stage_computed" and card["metrics"]["mse"] > 0
    fashion = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    encoded = httpx.post(
        f"{server}/encode", files={"image": ("x.png", png(fashion), "image/png")}, timeout=60
    )
    assert encoded.status_code == 200, encoded.text
    model = kvae.zoo.load("fmnist_two_stage_computed")
    x = fashion[None, ..., None].astype("float32") / 255
    mu, log_sigma = model.encode(x)
    np.testing.assert_allclose(encoded.json()["mu"], mu[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(encoded.json()["log_sigma"], log_sigma[0], rtol=1e-4, atol=1e-5)
    reconstruction = httpx.post(
        f"{server}/reconstruct",
        data={"sample": "true", "seed": "2"},
        files={"image": ("x.png", png(fashion), "image/png")},
        timeout=60,
    )
    np.testing.assert_array_equal(
        decode_png(reconstruction.content),
        image_utils.to_uint8(model.reconstruct(x, sample=True, seed=2))[0, ..., 0],
    )

    def generate(seed):
        response = httpx.post(
            f"{server}/mean-generate", json={"n": 4, "seed": seed, "format": "json"}, timeout=120
        )
        assert response.status_code == 200, response.text
        return response.json()["images"]

    def pixels(images):
        return np.stack([decode_png(base64.b64decode(item)) for item in images]).astype(int)

    sequential = [pixels(generate(seed)) for seed in range(6)]
    with ThreadPoolExecutor(6) as pool:  # decoded together by the adaptive batcher
        concurrent = [pixels(images) for images in pool.map(generate, range(6))]
    for alone, batched in zip(sequential, concurrent):  # an image depends on its request only
        assert np.abs(alone - batched).max() <= 1
    assert np.abs(sequential[0] - sequential[1]).max() > 10
    bad = httpx.post(f"{server}/sample-generate", json={"z": [[0.0] * 3]}, timeout=30)
    assert bad.status_code == 400 and "z" in bad.text
    assert httpx.post(f"{server}/sample-generate", json={"n": 2}, timeout=60).status_code == 200


def test_bentoml_clients_call_every_endpoint_in_every_format(server, tmp_path):
    """BentoML's own clients against the running server: the answers are
    what the service's schema declares (PNG bytes or JSON bytes by
    format, a PIL image for /reconstruct, a dict for /encode)."""
    import asyncio
    import json

    import bentoml

    picture = tmp_path / "shirt.png"
    picture.write_bytes(png((np.random.default_rng(3).random((28, 28)) * 255).astype(np.uint8)))
    with bentoml.SyncHTTPClient(server, timeout=120) as client:
        posterior = client.encode(image=picture, sample=True, seed=1)
        assert len(posterior["mu"]) == 64 and len(posterior["z"]) == 64
        reconstruction = client.reconstruct(image=picture)
        assert np.asarray(reconstruction).shape == (28, 28)
        for name in ("mean_generate", "sample_generate"):
            grid = getattr(client, name)(n=4, seed=2)
            assert Image.open(io.BytesIO(grid)).size == (2 * 30 + 2, 2 * 30 + 2)  # cells of 28 + 2
            images = json.loads(getattr(client, name)(n=3, seed=2, format="json"))["images"]
            assert len(images) == 3 and decode_png(base64.b64decode(images[0])).shape == (28, 28)
        with pytest.raises(bentoml.exceptions.BentoMLException):
            client.mean_generate(n=2, seed=-1)
        assert client.mean_generate(n=1, seed=1)  # still serving

    async def asynchronous():
        async with bentoml.AsyncHTTPClient(server, timeout=120) as client:
            posterior = await client.encode(image=picture)
            grid = await client.mean_generate(n=2, seed=5)
            listed = json.loads(await client.sample_generate(n=2, seed=5, format="json"))
            return posterior, grid, listed

    posterior, grid, listed = asyncio.run(asynchronous())
    assert len(posterior["mu"]) == 64 and grid.startswith(b"\x89PNG")
    assert len(listed["images"]) == 2


def test_the_real_server_answers_hostile_requests_with_4xx_and_one_log_line(servers):
    """The input classes of issue 16 over real HTTP: each a 4xx naming the
    field, the next good request served, no traceback in the server log."""
    url = servers["batched"]
    log_path = servers["logs"]["batched"]
    before = log_path.read_text(errors="replace").count("Traceback")
    hostile = [
        ("/encode", {"content": b"--x--", "headers": MULTIPART}, 400, "image"),
        ("/encode", {"files": [("image", (None, "http://127.0.0.1:1/x.png"))]}, 400, "image"),
        ("/encode", {"data": {"image": "[{}]"}}, 400, "image"),
        ("/encode", {"files": {"image": ("x.png", _bomb_png(), "image/png")}}, 400, "image"),
        (
            "/reconstruct",
            {"files": {"image": ("x.png", _multi_frame_png(), "image/png")}},
            400,
            "image",
        ),
        (
            "/reconstruct",
            {"files": {"image": ("x.png", _good_png()[:40], "image/png")}},
            400,
            "image",
        ),
        ("/sample-generate", {"json": {"seed": -166561, "temperature": 1.32}}, 400, "seed"),
        ("/mean-generate", {"json": {"seed": -5, "n": 2}}, 400, "seed"),
        ("/mean-generate", {"content": b'{"z": [[NaN]]}', "headers": JSON}, 400, "z"),
        ("/mean-generate", {"json": {"n": 2, "extra": True}}, 400, "extra"),
        ("/mean-generate", {"content": b" " * (3 * 2**20), "headers": JSON}, 413, "body"),
    ]
    for route, request_kwargs, status, field in hostile:
        response = httpx.post(url + route, timeout=60, **request_kwargs)
        assert response.status_code == status, (route, response.text)
        assert response.json()["field"] == field, response.text
        assert httpx.post(f"{url}/mean-generate", json={"n": 1}, timeout=60).status_code == 200
    time.sleep(1)  # the log is written by the server's processes
    log = log_path.read_text(errors="replace")
    assert log.count("Traceback") == before
    assert log.count("client error 400") >= 10
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    for name in (  # what docs/serving.md says to watch
        "bentoml_service_request_total",
        "bentoml_service_request_duration_seconds",
        "bentoml_service_request_in_progress",
        "kvae_batch_rows",
        "kvae_stage_seconds",
    ):
        assert name in metrics, name
    assert 'http_response_code="400"' in metrics
    assert 'kvae_stage_seconds_count{stage="decode"}' in metrics
    document = httpx.get(f"{url}/docs.json", timeout=30).json()
    generate = document["paths"]["/mean-generate"]["post"]["responses"]
    assert set(generate["200"]["content"]) == {"image/png", "application/json"}
    assert generate["400"]["content"]["application/json"]["schema"]["$ref"].endswith("KvaeError")


def test_bentoml_build_packs_the_service_and_the_default_model(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (source,) = (tmp_path / "bentos" / "kvae").glob("*/src")
    import serving.service

    card = kvae.zoo.card(serving.service.DEFAULT_MODEL)  # bentofile.yaml must include it
    for spec in card["files"].values():
        assert (
            hashlib.sha256((source / "zoo" / spec["path"]).read_bytes()).hexdigest()
            == spec["sha256"]
        )
    assert (source / "serving" / "service.py").is_file()
    for page in ("index.html", "app.js", "style.css"):  # the playground (issue 32)
        assert (source / "serving" / "playground" / page).is_file()
    assert (source / "kvae" / "zoo.py").is_file()
    assert not (source / "zoo" / "fmnist_lv").exists()  # only the default model
