"""Presets on a Hugging Face Hub, offline: a loopback stand-in that the real
`huggingface_hub` client talks to (tests/fake_hub.py), and caches the tests
fill themselves. Push, load by commit and by branch, a second version, a
cached pinned load with HF_HUB_OFFLINE=1, and each way a download can be
wrong: a changed cached file, a path or a file key that config.json must
not hold, a missing repository or revision, a malformed handle."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kvae
from fake_hub import FakeHub
from kvae import hub, presets, zoo

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "zoo"
SMALL = ZOO / "manifold2d_ls"
"""A small zoo preset (one stage, 2.7 MB)."""
PINNED = re.compile(r"hf://kvae-test/[\w.-]+@[0-9a-f]{40}")


@pytest.fixture(scope="module")
def fake_hub():
    with FakeHub() as server:
        yield server


@pytest.fixture(scope="module")
def pushed(fake_hub):
    """The small zoo preset pushed once: its pinned handle."""
    return hub.push(SMALL, "hf://kvae-test/manifold", endpoint=fake_hub.url)


def one_line(error):
    text = str(error.value)
    assert "\n" not in text, text
    return text


def test_push_then_load_by_commit_and_by_branch(fake_hub, pushed, tmp_path, caplog):
    assert PINNED.fullmatch(pushed)
    commit = pushed.split("@")[1]
    files = fake_hub.repos["kvae-test/manifold"]["commits"][commit]
    assert {"config.json", "stage1.keras", "README.md", "samples.png"} <= set(files)
    card = files["README.md"].decode()
    assert 'kvae.load("hf://kvae-test/manifold")' in card and "## Metrics" in card
    assert b"sha256" in files["config.json"]
    cache = tmp_path / "cache"
    start = len(fake_hub.requests)
    model = kvae.load(pushed, endpoint=fake_hub.url, cache_dir=cache)
    local = kvae.load(SMALL)
    np.testing.assert_array_equal(model.generate(64, seed=3), local.generate(64, seed=3))
    provenance = model.card["provenance"]
    assert (provenance["repo_id"], provenance["requested_revision"]) == (
        "kvae-test/manifold",
        commit,
    )
    assert provenance["resolved_revision"] == commit and provenance["endpoint"] == fake_hub.url
    # only the preset's files were fetched: not the card or the pictures
    fetched = {p for m, p in fake_hub.requests[start:] if m == "GET" and "/resolve/" in p}
    assert {Path(path).name for path in fetched} == {"config.json", "stage1.keras"}
    with caplog.at_level(logging.WARNING, logger="kvae.hub"):
        by_branch = kvae.load("hf://kvae-test/manifold", endpoint=fake_hub.url, cache_dir=cache)
    assert by_branch.card["provenance"]["requested_revision"] == "main"
    assert by_branch.card["provenance"]["resolved_revision"] == commit
    assert f"pin it with hf://kvae-test/manifold@{commit}" in caplog.text


def test_a_second_version_loads_by_its_own_commit(fake_hub, pushed, tmp_path):
    model = kvae.load(SMALL)
    model.card = {**model.card, "description": "second version"}
    model.latent_scale = None
    model.save(tmp_path / "second")
    second = hub.push(tmp_path / "second", "hf://kvae-test/manifold", endpoint=fake_hub.url)
    assert PINNED.fullmatch(second) and second != pushed
    cache = tmp_path / "cache"
    assert kvae.load(second, endpoint=fake_hub.url, cache_dir=cache).card["description"] == (
        "second version"
    )
    first = kvae.load(pushed, endpoint=fake_hub.url, cache_dir=cache)
    assert first.card["description"] == kvae.load(SMALL).card["description"]


def test_a_pinned_cached_load_is_offline_and_fast(fake_hub, pushed, tmp_path):
    cache = tmp_path / "cache"
    kvae.load(pushed, endpoint=fake_hub.url, cache_dir=cache)
    before = len(fake_hub.requests)
    script = (
        # Keras and TensorFlow start first: the load itself is what is timed
        "import sys, time; import kvae, kvae.models; started = time.time(); "
        f"m = kvae.load({pushed!r}, cache_dir={str(cache)!r}); "
        "print(time.time() - started, m.card['provenance']['resolved_revision'])"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seconds, commit = result.stdout.split()[-2:]
    assert float(seconds) < 5.0 and commit == pushed.split("@")[1]
    assert len(fake_hub.requests) == before  # no request reached the Hub


def test_a_changed_cached_file_is_refused_with_both_digests(fake_hub, pushed, tmp_path):
    cache = tmp_path / "cache"
    model = kvae.load(pushed, endpoint=fake_hub.url, cache_dir=cache)
    stage1 = Path(model.card["provenance"]["files"]["stage1"]["path"])
    recorded = model.card["provenance"]["files"]["stage1"]["sha256"]
    blob = stage1.resolve()  # the cache's blob behind the snapshot's link
    content = bytearray(blob.read_bytes())
    content[len(content) // 2] ^= 0xFF
    blob.write_bytes(bytes(content))
    with pytest.raises(presets.PresetError) as raised:
        kvae.load(pushed, endpoint=fake_hub.url, cache_dir=cache)
    text = one_line(raised)
    assert "sha256 mismatch" in text and "stage1.keras" in text and recorded in text


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["files"]["stage1"].update(path="../stage1.keras"), "plain file name"),
        (lambda c: c["files"]["stage1"].update(path="/tmp/stage1.keras"), "plain file name"),
        (lambda c: c["files"].update(weights=dict(c["files"]["stage1"])), "unknown file key"),
        (lambda c: c["files"].pop("stage1"), "names no stage1"),
        (lambda c: c.update(format="keras"), "not a kvae preset config"),
    ],
    ids=["parent-path", "absolute-path", "unknown-key", "no-stage1", "format"],
)
def test_config_json_may_not_name_other_files(fake_hub, tmp_path, change, message):
    folder = tmp_path / "crafted"
    shutil.copytree(SMALL, folder)
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    api = __import__("huggingface_hub").HfApi(endpoint=fake_hub.url, token="test")
    api.create_repo("kvae-test/crafted", exist_ok=True)
    commit = api.upload_folder(folder_path=folder, repo_id="kvae-test/crafted").oid
    requests = len(fake_hub.requests)
    with pytest.raises(presets.PresetError) as raised:
        kvae.load(
            f"hf://kvae-test/crafted@{commit}", endpoint=fake_hub.url, cache_dir=tmp_path / "c"
        )
    assert message in one_line(raised)
    keras_files = [p for m, p in fake_hub.requests[requests:] if p.endswith(".keras")]
    assert keras_files == []  # refused before any model file was fetched


def test_missing_repositories_revisions_and_bad_handles(fake_hub, pushed, tmp_path):
    options = {"endpoint": fake_hub.url, "cache_dir": tmp_path / "cache"}
    cases = [
        ("hf://kvae-test/absent", hub.HubError, "no repository kvae-test/absent"),
        ("hf://kvae-test/manifold@no-such-branch", hub.HubError, "no revision 'no-such-branch'"),
        ("hf://kvae-test/manifold@" + "0" * 40, hub.HubError, "no revision"),
        ("hf://kvae-test", hub.HubError, "not a Hub handle"),
        ("hf://kvae-test/manifold@bad revision", hub.HubError, "not a Hub handle"),
    ]
    for handle, kind, message in cases:
        with pytest.raises(kind) as raised:
            kvae.load(handle, **options)
        assert message in one_line(raised), handle
    with pytest.raises(ValueError, match="safe_mode cannot be turned off"):
        kvae.load(pushed, safe_mode=False, **options)


def test_offline_and_not_cached_is_one_line(pushed, tmp_path):
    script = f"import kvae; kvae.load({pushed!r}, cache_dir={str(tmp_path)!r})"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "is not in the Hugging Face cache and the Hub cannot be reached" in result.stderr


def test_push_takes_a_keras_file_and_a_run_folder(fake_hub, tmp_path, capsys):
    run = ROOT / "tests" / "fixtures" / "run_v0_1"
    code = hub.main(["push", str(run), "hf://kvae-test/run", "--endpoint", fake_hub.url])
    handle = capsys.readouterr().out.strip()
    assert code == 0 and PINNED.fullmatch(handle)
    model = kvae.load(handle, endpoint=fake_hub.url, cache_dir=tmp_path / "cache")
    stages = [kvae.load(run / f"stage{stage}.keras", compile=False) for stage in (1, 2)]
    expected = kvae.TwoStageVAE(*stages).generate(16, seed=1)
    np.testing.assert_array_equal(model.generate(16, seed=1), expected)
    assert model.card["dataset"] == "manifold2d" and model.stages == (1, 2)
    single = hub.push(run / "stage1.keras", "hf://kvae-test/single", endpoint=fake_hub.url)
    loaded = kvae.load(single, endpoint=fake_hub.url, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(loaded.generate(8, seed=2), stages[0].generate(8, seed=2))
    code = hub.main(["push", str(tmp_path), "hf://kvae-test/x", "--endpoint", fake_hub.url])
    assert code == 2 and "is not a preset folder" in capsys.readouterr().err
    assert hub.main(["push", str(run), "hf://kvae-test/x@main"]) == 2
    assert "give the branch as the revision" in capsys.readouterr().err


def test_zoo_publish_pins_the_manifest_and_zoo_load_reads_the_hub(fake_hub, tmp_path):
    local = tmp_path / "zoo"
    local.mkdir()
    shutil.copy(ZOO / "manifest.json", local / "manifest.json")
    shutil.copytree(SMALL, local / SMALL.name)
    published = zoo.publish("kvae-test", local, [SMALL.name], endpoint=fake_hub.url)
    handle = published[SMALL.name]
    assert PINNED.fullmatch(handle)
    assert zoo.card(SMALL.name, local)["hub"]["handle"] == handle
    assert handle in (local / "README.md").read_text()
    # an installation without the model's folder: the cache, then the Hub
    shutil.rmtree(local / SMALL.name)
    model = zoo.load(SMALL.name, local, endpoint=fake_hub.url, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(model.generate(32, seed=4), kvae.load(SMALL).generate(32, seed=4))
    assert model.card["provenance"]["resolved_revision"] == handle.split("@")[1]
    with pytest.raises(zoo.ZooError, match="not published on the Hugging Face Hub yet"):
        zoo.load("fmnist_mse", local)
