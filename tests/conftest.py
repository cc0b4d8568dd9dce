"""Test session setup: the in-process backend is TensorFlow; JAX checks run
in subprocesses (tests/backend_worker.py), as a Keras backend is fixed per
process.

The Hugging Face Hub client is pointed at a dead loopback port (and its own
cache and telemetry off) before anything imports it: a test that forgets to
pass `endpoint=` to kvae.hub fails at once instead of leaving the machine.
The client reads these variables once, when it is first imported."""

import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

DEAD_HUB = "http://127.0.0.1:9"
"""The discard port: nothing listens there, so a request is refused at once."""
assert "huggingface_hub" not in sys.modules, "huggingface_hub was imported before the guard"
os.environ["HF_ENDPOINT"] = DEAD_HUB
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="kvae-tests-hf-home-")
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_TOKEN", None)

from real_servers import hub_cache, server, servers  # noqa: E402, F401  (session fixtures)
