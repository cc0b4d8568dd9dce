"""Really started `bentoml serve` processes, shared by the tests of the
service and of the playground: started side by side once per test session
(each takes about 10 s to warm its compiled decoders) and stopped at its
end. conftest.py makes the fixtures visible to every test module."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import kvae
from helpers import free_ports

ROOT = Path(__file__).resolve().parent.parent
EMOJI_MODEL = "emoji_two_stage_computed"
TOKEN = "playground-s3cret"
"""The token of the "hub" server."""
TOKEN_HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _serve(home, *args, env=None):
    """Start `bentoml serve` from the repository root (bentofile.yaml: the
    default zoo model) as the README does, without --host, on a free port
    given through $BENTOML_PORT, with `env` added to the environment;
    returns (process, url, log)."""
    extra = env or {}
    (port,) = free_ports(1)
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
            "BENTOML_PORT": str(port),
            **extra,
        }
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", *args],
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


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory):
    """(handle, cache): the default zoo model pushed to a loopback Hub and
    downloaded at its commit into a Hugging Face cache made here; the Hub is
    gone afterwards, so a server given the handle reads the cache offline."""
    from fake_hub import FakeHub

    cache = tmp_path_factory.mktemp("hf-cache")
    with FakeHub() as hub:
        handle = kvae.hub.push(
            ROOT / "zoo" / serving_default(), "hf://kvae-test/default", endpoint=hub.url
        )
        kvae.hub.download(handle, endpoint=hub.url, cache_dir=cache)
    return handle, cache


def serving_default():
    import serving.service

    return serving.service.DEFAULT_MODEL


@pytest.fixture(scope="session")
def servers(tmp_path_factory, hub_cache):
    """Real servers, started side by side, each a variant of the README's
    command: {"batched": url (the default zoo model), "hub": url (--arg
    model=hf://...@COMMIT, offline from a cache, behind the token TOKEN
    through $KVAE_API_TOKEN), "emoji": url (the colour zoo model with --arg
    batching=false)}. Three servers rather than one per variant: each costs
    about 10 s of the suite's two cores to start."""
    handle, cache = hub_cache
    runs = {
        "emoji": (("--arg", f"model={EMOJI_MODEL}", "--arg", "batching=false"), None),
        "batched": ((), None),
        "hub": (
            ("--arg", f"model={handle}"),
            {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "KVAE_API_TOKEN": TOKEN},
        ),
    }
    started = {}
    try:
        for name, (args, env) in runs.items():
            started[name] = _serve(tmp_path_factory.mktemp(f"bentoml-{name}"), *args, env=env)
        deadline = time.time() + 300
        for process, url, log_path in started.values():
            _wait_ready(process, url, log_path, deadline)
        urls = {name: url for name, (_, url, _) in started.items()}
        yield {
            **urls,
            "logs": {name: log for name, (_, _, log) in started.items()},
            "pids": {name: process.pid for name, (process, _, _) in started.items()},
        }
    finally:
        for process, _, _ in started.values():
            _stop(process)


@pytest.fixture(scope="session")
def server(servers):
    return servers["batched"]
