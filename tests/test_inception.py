"""The papers' FID network (kvae.inception) on a stand-in archive built here:
the verification by function (size, members, the panda test) and its
refusals, the loader, both protocols' pixels against NumPy, whole batches
only, the sha256 pin, the download command, and the real-statistics cache."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import (
    PANDA_ANSWER,
    fake_inception_dai2019,
    fake_inception_features,
    legacy_resize_bilinear,
    write_fake_inception_archive,
)
from kvae import features, inception, inception_graph, metrics


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_fake_inception_archive(tmp_path_factory.mktemp("inception") / "fake.tgz")


@pytest.fixture(autouse=True)
def no_pin(monkeypatch, tmp_path, archive):
    """No pinned digest, a Keras cache of the test's own, and the stand-in's
    size as the published one (the size check is tested by changing it)."""
    monkeypatch.delenv(inception.SHA256_VARIABLE, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(inception, "ARCHIVE_SIZE", archive.stat().st_size)


def refusal(archive):
    with pytest.raises(inception.InceptionUnavailable) as raised:
        inception_graph.InceptionGraph(archive, verbose=False)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_an_archive_answering_the_published_five_is_verified_and_recorded(archive):
    network = inception_graph.InceptionGraph(archive, verbose=False)
    provenance = network.protocol()
    assert provenance["verified_by"] == "published size and classifications"
    assert provenance["network_sha256"] == sha256(archive)
    assert [name for name, _ in provenance["top5"]] == list(inception.PUBLISHED_TOP5)
    assert provenance["top5"][0][1] == pytest.approx(0.89107, abs=1e-5)
    record = json.loads(inception.verified_record().read_text())
    assert record[str(archive.resolve())]["sha256"] == sha256(archive)


def answer_with(**changes):
    """The published answer with some entries changed: order (a list of
    positions), a renamed class, or another top score."""
    rows = [list(row) for row in PANDA_ANSWER]
    if "order" in changes:
        scores = [row[3] for row in rows]
        rows = [rows[i] for i in changes["order"]]
        for row, score in zip(rows, scores):
            row[3] = score
    if "rename" in changes:
        rows[changes["rename"]][2] = "sea anemone, anemone"
    if "top" in changes:
        rows[0][3] = changes["top"]
    return tuple(tuple(row) for row in rows)


@pytest.mark.parametrize(
    "kind, answer, leave_out, message",
    [
        ("order", answer_with(order=[0, 2, 1, 3, 4]), (), "top five are giant panda, lesser panda"),
        ("class", answer_with(rename=3), (), "sea anemone"),
        ("score", answer_with(top=0.85), (), "score of 0.85000 for giant panda"),
        ("member", PANDA_ANSWER, ("imagenet_synset_to_human_label_map.txt",), "synset_to_human"),
    ],
)
def test_an_archive_that_answers_otherwise_is_refused(
    tmp_path, monkeypatch, kind, answer, leave_out, message
):
    other = write_fake_inception_archive(tmp_path / f"{kind}.tgz", answer, leave_out)
    monkeypatch.setattr(inception, "ARCHIVE_SIZE", other.stat().st_size)
    assert message in refusal(other)
    assert not inception.verified_record().exists()  # nothing recorded


def test_a_wrong_size_and_a_changed_verified_file_are_refused(archive, tmp_path, monkeypatch):
    size = archive.stat().st_size
    monkeypatch.setattr(inception, "ARCHIVE_SIZE", size + 1)
    assert f"has {size:,} bytes; the published {inception.ARCHIVE_NAME} has {size + 1:,}" in (
        refusal(archive)
    )
    monkeypatch.setattr(inception, "ARCHIVE_SIZE", size)
    copy = tmp_path / "copy.tgz"
    copy.write_bytes(archive.read_bytes())
    inception_graph.InceptionGraph(copy, verbose=False)  # verified and recorded
    content = bytearray(copy.read_bytes())
    content[-10] ^= 0xFF  # same size, other bytes
    copy.write_bytes(bytes(content))
    message = refusal(copy)
    assert "changed since kvae verified it" in message and sha256(archive) in message


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_legacy_resize_reference_matches_tensorflow_resize_bilinear():
    import tensorflow as tf

    images = np.random.default_rng(0).random((2, 7, 5, 3)).astype("float32")
    expected = tf.compat.v1.image.resize_bilinear(images, [11, 11]).numpy()
    np.testing.assert_allclose(legacy_resize_bilinear(images, 11), expected, atol=1e-6)


def test_missing_archive_names_the_command_and_the_url(tmp_path):
    with pytest.raises(inception.InceptionUnavailable) as raised:
        inception_graph.InceptionGraph()
    message = str(raised.value)
    assert "\n" not in message
    assert "python -m kvae.features download-inception" in message
    assert "inception-2015-12-05" in message and inception.ARCHIVE_URL in message
    assert str(tmp_path / "keras-home" / "models" / inception.ARCHIVE_NAME) in message
    with pytest.raises(inception.InceptionUnavailable, match="archive .*absent.tgz does not exist"):
        inception_graph.InceptionGraph(tmp_path / "absent.tgz")


def test_a_file_of_another_digest_is_refused_with_both(archive, monkeypatch, tmp_path):
    wanted = "ab" * 32
    monkeypatch.setenv(inception.SHA256_VARIABLE, wanted.upper())
    with pytest.raises(inception.InceptionUnavailable) as raised:
        inception_graph.InceptionGraph(archive)
    assert wanted in str(raised.value) and sha256(archive) in str(raised.value)
    monkeypatch.setenv(inception.SHA256_VARIABLE, sha256(archive))
    pinned = inception_graph.InceptionGraph(archive, verbose=False).protocol()
    assert pinned["verified_by"] == "pinned sha256 (KVAE_INCEPTION_SHA256)"
    not_an_archive = tmp_path / "graph.pb"
    not_an_archive.write_bytes(b"not a tar")
    monkeypatch.setattr(inception, "ARCHIVE_SIZE", not_an_archive.stat().st_size)
    monkeypatch.delenv(inception.SHA256_VARIABLE)
    with pytest.raises(inception.InceptionUnavailable, match="classify_image_graph_def.pb"):
        inception_graph.InceptionGraph(not_an_archive)


def test_dai2019_feeds_0_255_at_native_size_and_stretches_generated_images(archive):
    network = inception_graph.InceptionGraph(archive, "dai2019", verbose=False)
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (120, 28, 28, 1), dtype=np.uint8)
    got = network(real)
    assert got.shape == (100, 2048)  # batches of 50: the last 20 are dropped
    rgb = np.repeat(real[:100], 3, axis=-1).astype(np.float64)
    np.testing.assert_allclose(got, fake_inception_dai2019(rgb), atol=2e-5)
    # Generated images: each stretched to [0, 1] over its pixels, then x 255.
    generated = rng.uniform(0.2, 0.6, (50, 8, 8, 3)).astype("float32")
    generated[3] = 0.4  # a constant image becomes black, not NaN
    low = generated.min(axis=(1, 2, 3), keepdims=True)
    spread = generated.max(axis=(1, 2, 3), keepdims=True) - low
    stretched = np.where(spread > 0, (generated - low) / np.maximum(spread, 1e-12), 0.0) * 255
    np.testing.assert_allclose(
        network(generated, generated=True), fake_inception_dai2019(stretched), atol=2e-5
    )
    # Real float images in [0, 1] are only scaled.
    np.testing.assert_allclose(
        network(generated), fake_inception_dai2019(generated * 255.0), atol=2e-5
    )
    with pytest.raises(ValueError, match="whole batches of 50"):
        network(real[:49])


def test_asperti2020_resizes_minus_one_to_one_in_tensorflow_and_feeds_mul(archive):
    network = inception_graph.InceptionGraph(archive, "asperti2020", verbose=False)
    rng = np.random.default_rng(2)
    images = rng.uniform(-0.1, 1.1, (130, 32, 32, 3)).astype("float32")
    got = network(images, generated=True)
    assert got.shape == (128, 2048)  # batches of 64: the last 2 are dropped
    mul_input = legacy_resize_bilinear(np.clip(images[:128], 0, 1) * 2 - 1, 299)
    np.testing.assert_allclose(got, fake_inception_features(mul_input), atol=2e-5)
    grey = rng.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    expected = fake_inception_features(
        legacy_resize_bilinear(np.repeat(grey, 3, -1) / 255.0 * 2 - 1, 299)
    )
    np.testing.assert_allclose(network(grey), expected, atol=2e-5)
    protocol = network.protocol(130)
    assert protocol["fid_protocol"] == "asperti2020" and protocol["images_used"] == 128
    assert protocol["network_sha256"] == sha256(archive)
    assert protocol["verified_by"] == "published size and classifications"


def test_real_statistics_are_cached_by_network_protocol_and_images(archive, tmp_path):
    calls = []

    class Counting:
        def __init__(self, protocol):
            self.network = inception_graph.InceptionGraph(archive, protocol, verbose=False)

        def cache_key(self):
            return self.network.cache_key()

        def __call__(self, images, generated=False):
            calls.append(len(images))
            return self.network(images, generated)

    images = np.random.default_rng(3).integers(0, 256, (128, 16, 16, 3), dtype=np.uint8)
    context = {"dataset": "test", "split": "test", "count": 128}
    cache = tmp_path / "cache"
    dai = Counting("dai2019")
    first, cached = features.real_statistics(dai, images, context, cache)
    assert not cached and calls == [128]
    second, cached = features.real_statistics(dai, images, context, cache)
    assert cached and calls == [128]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    expected = metrics.gaussian_statistics(fake_inception_dai2019(images[:100].astype(np.float64)))
    np.testing.assert_allclose(second[0], expected[0], atol=2e-5)
    # Another protocol, other images or another split are other entries.
    features.real_statistics(Counting("asperti2020"), images, context, cache)
    features.real_statistics(dai, images[::-1], context, cache)
    features.real_statistics(dai, images, {**context, "split": "validation"}, cache)
    assert len(calls) == 4 and len(list(cache.glob("*.npz"))) == 4
    # A damaged entry is recomputed.
    for entry in cache.glob("*.npz"):
        entry.write_bytes(b"garbage")
    _, cached = features.real_statistics(dai, images, context, cache)
    assert not cached and len(calls) == 5


def test_fid_of_a_set_with_itself_is_zero_and_equals_numpy_otherwise(archive):
    network = inception_graph.InceptionGraph(archive, "dai2019", verbose=False)
    rng = np.random.default_rng(4)
    real = rng.integers(0, 256, (100, 16, 16, 1), dtype=np.uint8)
    fake = np.clip(real / 255.0 + rng.normal(0, 0.2, real.shape), 0, 1).astype("float32")
    real_statistics = metrics.gaussian_statistics(network(real))
    # About 0: round-off on a rank-99 covariance of 2048 features.
    scale = np.trace(real_statistics[1])
    assert abs(metrics.frechet_distance(*real_statistics, *real_statistics)) < 1e-5 * scale
    fid = metrics.frechet_distance(
        *real_statistics, *metrics.gaussian_statistics(network(fake, generated=True))
    )
    low = fake.min(axis=(1, 2, 3), keepdims=True)
    stretched = (fake - low) / (fake.max(axis=(1, 2, 3), keepdims=True) - low) * 255
    numpy_fid = metrics.frechet_distance(
        *metrics.gaussian_statistics(fake_inception_dai2019(np.repeat(real, 3, -1))),
        *metrics.gaussian_statistics(fake_inception_dai2019(np.repeat(stretched, 3, -1))),
    )
    assert fid > 0.1 and fid == pytest.approx(numpy_fid, rel=1e-4)


def test_download_command_fetches_verifies_and_refuses(archive, tmp_path):
    """The real download path (keras.utils.get_file) on a file:// origin, in
    a fresh process: a pinned digest that differs is refused with both
    digests and leaves nothing behind; without a pin the file is verified by
    function and the command prints how."""
    home = tmp_path / "home"
    script = f"""
import contextlib, io, os, sys
from kvae import features, inception
inception.ARCHIVE_URL = {archive.as_uri()!r}
inception.ARCHIVE_SIZE = {archive.stat().st_size}
os.environ[inception.SHA256_VARIABLE] = "cd" * 32
errors = io.StringIO()
with contextlib.redirect_stderr(errors):
    refused = features.main(["download-inception"])
print("REFUSED", refused, errors.getvalue().strip())
print("LEFT", os.path.exists(os.path.join({str(home)!r}, "models", inception.ARCHIVE_NAME)))
del os.environ[inception.SHA256_VARIABLE]
sys.exit(features.main(["download-inception"]))
"""
    env = {"KERAS_HOME": str(home), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    refused = next(line for line in result.stdout.splitlines() if line.startswith("REFUSED"))
    assert refused.startswith("REFUSED 2") and "cd" * 32 in refused and sha256(archive) in refused
    assert "LEFT False" in result.stdout
    assert sha256(home / "models" / inception.ARCHIVE_NAME) == sha256(archive)
    assert "established by published size and classifications" in result.stdout
    assert "cropped_panda.jpg: giant panda 0.89107, indri 0.00779" in result.stdout
