"""The BentoML service: every endpoint and every bad input through an
in-process ASGI client (a tiny two-stage model made here), checked against
the models' own outputs; then the real `bentoml serve` of the default zoo
model, called over plain HTTP from concurrent clients."""

import base64
import hashlib
import importlib
import io
import os
import signal
import socket
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


@pytest.mark.parametrize(
    "route,payload,field",
    [
        ("/mean-generate", {"n": 0}, "n"),
        ("/mean-generate", {"n": 257}, "n"),
        ("/sample-generate", {"temperature": -1}, "temperature"),
        ("/mean-generate", {"stage": 3}, "stage"),
        ("/mean-generate", {"z": [[0.0, 0.0, 0.0]]}, "z"),
        ("/mean-generate", {"z": []}, "z"),
        ("/sample-generate", {"z": [[0.0] * 4] * 257}, "z"),
        ("/mean-generate", {"z": "not a list"}, "z"),
        ("/mean-generate", {"format": "gif"}, "format"),
        ("/mean-generate", {"seed": "abc"}, "seed"),
    ],
)
def test_bad_generation_requests_get_a_400_naming_the_field(client, route, payload, field):
    response = client.post(route, json=payload)
    assert response.status_code == 400, response.text
    assert field in response.text
    assert client.post(route, json={"n": 1}).status_code == 200  # still serving


@pytest.mark.parametrize(
    "upload",
    [
        ("x.png", b"not an image at all", "image/png"),
        ("x.gif", None, "image/gif"),
        ("x.png", "huge", "image/png"),
        ("x.txt", b"hello", "text/plain"),
    ],
)
@pytest.mark.parametrize("route", ["/encode", "/reconstruct"])
def test_bad_uploads_get_a_400_naming_the_image(client, route, upload):
    name, content, media_type = upload
    if content is None:
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "GIF")
        content = buffer.getvalue()
    elif content == "huge":  # a valid PNG over 4 MB (noise does not compress)
        noise = (np.random.default_rng(0).random((1300, 1300, 3)) * 255).astype(np.uint8)
        content = png(noise)
        assert len(content) > 4 * 2**20
    response = client.post(route, files={"image": (name, content, media_type)})
    assert 400 <= response.status_code < 500, response.text
    assert "image" in response.text
    missing = client.post(route, data={"sample": "false"})
    assert 400 <= missing.status_code < 500 and "image" in missing.text
    ok = client.post(
        route, files={"image": ("x.png", png(np.zeros((8, 8), np.uint8)), "image/png")}
    )
    assert ok.status_code == 200


def test_models_health_and_openapi(client, models):
    _, (stage1_path, _) = models
    card = client.get("/models", follow_redirects=False)
    assert card.status_code == 200 and card.json()["path"] == str(stage1_path)
    assert client.post("/models").status_code == 405
    assert client.get("/livez").status_code == 200 and client.get("/readyz").status_code == 200
    paths = client.get("/docs.json").json()["paths"]
    for route in ("/encode", "/reconstruct", "/mean-generate", "/sample-generate"):
        assert route in paths


# -- the real server -----------------------------------------------------------------


def _serve(home, *args):
    """Start `bentoml serve` from the repository root (bentofile.yaml: the
    default zoo model) on a free loopback port; returns (process, url, log)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = home / "serve.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KVAE_MODEL", "KVAE_STAGE2", "KVAE_BATCHING")
    }
    env.update(
        {
            "BENTOML_HOME": str(home),
            "BENTOML_DO_NOT_TRACK": "true",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": "",
        }
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}", log_path


def _wait_ready(process, url, log_path, deadline):
    while True:
        if process.poll() is not None:
            pytest.fail(f"bentoml serve exited {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            pytest.fail(f"bentoml serve not ready in time:\n{log_path.read_text()}")
        time.sleep(1)


def _stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two real servers of the default zoo model, started side by side:
    {"batched": url, "unbatched": url (--arg batching=false)}."""
    started = {}
    try:
        for name, args in (("batched", ()), ("unbatched", ("--arg", "batching=false"))):
            started[name] = _serve(tmp_path_factory.mktemp(f"bentoml-{name}"), *args)
        deadline = time.time() + 300
        for process, url, log_path in started.values():
            _wait_ready(process, url, log_path, deadline)
        yield {name: url for name, (_, url, _) in started.items()}
    finally:
        for process, _, _ in started.values():
            _stop(process)


@pytest.fixture(scope="module")
def server(servers):
    return servers["batched"]


def test_the_service_and_the_library_give_the_same_images_for_a_seed(servers):
    """Issue 13's acceptance: kvae.zoo.load(name).generate(4, mode, seed=3,
    stage) and POST /{mode}-generate {"n": 4, "seed": 3, "stage", "format":
    "json"} on a really started server give the same pixels, for both
    stages and modes, with the Decoder's batching on and off."""
    model = kvae.zoo.load("fmnist_two_stage_computed")
    for stage in (1, 2):
        for mode in ("mean", "sample"):
            expected = image_utils.to_uint8(model.generate(4, mode=mode, seed=3, stage=stage))
            for name, url in servers.items():
                response = httpx.post(
                    f"{url}/{mode}-generate",
                    json={"n": 4, "seed": 3, "stage": stage, "format": "json"},
                    timeout=120,
                )
                assert response.status_code == 200, response.text
                got = np.stack(
                    [decode_png(base64.b64decode(item)) for item in response.json()["images"]]
                )
                np.testing.assert_array_equal(
                    got, expected[..., 0], err_msg=f"{name} stage {stage} {mode}"
                )


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
    assert (source / "kvae" / "zoo.py").is_file()
    assert not (source / "zoo" / "fmnist_lv").exists()  # only the default model
