"""Test session setup: the in-process backend is TensorFlow; JAX checks run
in subprocesses (tests/backend_worker.py), as a Keras backend is fixed per
process."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
