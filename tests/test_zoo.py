"""The model zoo: every shipped checkpoint in a fresh process, its recorded
metrics reproduced by `kvae.evaluate`, sha256 checks, recipes, and export."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kvae
from kvae import data, evaluate, train, zoo
from kvae.presets import PresetError

ZOO = Path(__file__).resolve().parent.parent / "zoo"
SHIPPED = (
    "fmnist_two_stage_computed",
    "fmnist_two_stage_learned",
    "fmnist_lv",
    "fmnist_mse",
    "manifold2d_ls",
    "manifold2d_lv",
    "emoji_two_stage_computed",
)
"""The models issues 6 and 31 ask the zoo to ship, trained."""
RECIPES = (
    "celeba_two_stage_computed",
    "celeba_two_stage_learned",
    "cifar10_two_stage_computed",
    "cifar10_two_stage_learned",
)
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _python(code, *args, timeout=600):
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=ENV,
        cwd=ZOO.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


SHAPES = {"fashion_mnist": [28, 28, 1], "emoji": [32, 32, 3], "manifold2d": [2]}
"""The data shape of each zoo dataset, written out here."""


def _needs_data(name):
    """Skip (fail on CI for Fashion-MNIST, which CI always installs) when the
    model's data is not on this machine."""
    dataset = zoo.card(name)["dataset"]
    if dataset == "fashion_mnist" and data.idx_folder("fashion_mnist", None) is None:
        message = "Fashion-MNIST not found: apt-get install dataset-fashion-mnist"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it; never skip there
        pytest.skip(message)
    if dataset == "emoji":
        from kvae.data import emoji

        for style in emoji.STYLES:
            try:
                emoji.locate(style, None)
            except data.DataError as error:
                pytest.skip(f"the emoji model's check needs every style: {error}")


def test_the_zoo_lists_what_it_ships_and_stays_under_100_mb():
    assert zoo.list() == sorted(SHIPPED)
    assert zoo.recipes() == sorted(RECIPES)
    total = sum(path.stat().st_size for path in ZOO.rglob("*") if path.is_file())
    assert total < 100 * 2**20, f"zoo/ holds {total / 2**20:.1f} MiB"
    for name in SHIPPED:
        card = zoo.card(name)
        assert card["command"].startswith("python -m kvae.train ")
        assert card["epochs"]["stage1"] > 0 and card["trained_on"]["device"]
        assert (ZOO / card["samples"]).is_file()
        assert isinstance(card["metrics"]["mse"], float) and 0 < card["metrics"]["mse"] < 1
        on_disk = json.loads((ZOO / name / "metrics.json").read_text())
        assert on_disk["mse"] == card["metrics"]["mse"]
        preset = json.loads((ZOO / name / "config.json").read_text())  # a TwoStageVAE preset
        assert preset["format"] == "kvae.TwoStageVAE" and preset["card"] == card
        assert preset["latent_noise"] == card["generation"]["latent_noise"]
        assert {stage: spec["sha256"] for stage, spec in preset["files"].items()} == {
            stage: spec["sha256"] for stage, spec in card["files"].items()
        }
        for spec in card["files"].values():
            path = ZOO / spec["path"]
            assert (
                path.stat().st_size == spec["size"]
                and hashlib.sha256(path.read_bytes()).hexdigest() == spec["sha256"]
            )
        two_stage = "two_stage" in name
        assert set(card["files"]) == ({"stage1", "stage2"} if two_stage else {"stage1"})
        assert card["stages"] == (2 if two_stage else 1)


LOAD_AND_GENERATE = """
import json, keras, numpy as np
try:  # plain Keras in a process that has not imported kvae's classes
    keras.saving.load_model("zoo/fmnist_mse/stage1.keras")
    without = "loaded"
except TypeError as error:
    without = str(error)
import kvae
import kvae.models  # registers them: what the README says plain Keras needs
report = {"_without_kvae": without}
for name in kvae.zoo.list():
    model = kvae.zoo.load(name)
    assert isinstance(model, kvae.TwoStageVAE) and model.card["name"] == name
    shape = tuple(model.stage1.data_shape)
    entry = {"stages": list(model.stages), "shape": list(shape), "finite": True,
             "dataset": model.card["dataset"]}
    for stage in model.stages:
        for mode in ("mean", "sample"):
            images = model.generate(3, mode=mode, seed=0, stage=stage)
            entry["finite"] &= bool(np.isfinite(images).all()) and images.shape == (3, *shape)
            again = model.generate(3, mode=mode, seed=0, stage=stage)
            entry["finite"] &= bool(np.array_equal(images, again))
            if mode == "mean" and len(shape) == 3:  # images; a draw adds unclipped noise
                entry["finite"] &= bool(images.min() >= 0 and images.max() <= 1)
            if shape[-1] == 3:  # colour: the channels differ
                entry["channel_gap"] = float(np.abs(images[..., 0] - images[..., 2]).mean())
    z = np.random.default_rng(0).normal(size=(2, model.stage1.latent_dim)).astype("float32")
    plain = keras.saving.load_model(f"zoo/{name}/stage1.keras")
    decoded = [plain.decode_distribution(z), model.stage1.decode_distribution(z)]
    entry["plain_keras_equal"] = all(
        bool(np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)))
        for a, b in zip(*decoded))
    entry["class"] = type(plain).__name__
    report[name] = entry
print(json.dumps(report))
"""


def test_every_shipped_model_loads_and_generates_in_a_fresh_process():
    report = _python(LOAD_AND_GENERATE)
    without = report.pop("_without_kvae")
    assert "Could not locate class 'VAE'" in without and "kvae.models" in without
    assert sorted(report) == sorted(SHIPPED)
    for name, entry in report.items():
        assert entry["finite"], name
        assert entry["plain_keras_equal"] and entry["class"] == "VAE", name
        assert entry["stages"] == ([1, 2] if "two_stage" in name else [1])
        assert entry["shape"] == SHAPES[entry["dataset"]], name
    colour = report["emoji_two_stage_computed"]
    assert colour["shape"] == [32, 32, 3] and colour["channel_gap"] > 0.02  # not grey


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_mse_is_reproduced_by_kvae_evaluate(name, tmp_path):
    _needs_data(name)
    card = zoo.card(name)
    check = card["check"]
    # The command's main() in this process (tests/test_evaluation.py runs the
    # command itself in a subprocess): the .keras files as a user gives them.
    command = [
        ZOO / card["files"]["stage1"]["path"],
        "--dataset",
        card["dataset"],
        "--num-images",
        check["num_images"],
        # The per-latent reconstruction gains (a decode pass per latent) do
        # not enter the MSEs compared here: 20 images run their code, 500
        # cost 9 s more per Fashion-MNIST model and 33 s more for emoji
        # (the MSEs equal to 1e-9 either way, measured).
        "--gain-images",
        20,
        "--seed",
        check["seed"],
        "--fid",
        "off",
        "--out",
        tmp_path,
    ]
    if "stage2" in card["files"]:
        command += ["--stage2", ZOO / card["files"]["stage2"]["path"]]
    assert evaluate.main([str(part) for part in command]) == 0
    measured = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("mse", "mse_from_mu"):
        assert measured[key] == pytest.approx(check[key], rel=0.01), key


def test_a_changed_file_is_refused_with_its_name(tmp_path):
    shutil.copy(ZOO / zoo.MANIFEST, tmp_path / zoo.MANIFEST)
    shutil.copytree(ZOO / "manifold2d_ls", tmp_path / "manifold2d_ls")
    target = tmp_path / "manifold2d_ls" / "stage1.keras"
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0xFF
    target.write_bytes(bytes(content))
    with pytest.raises(PresetError, match=r"sha256 mismatch for .*manifold2d_ls/stage1\.keras"):
        zoo.load("manifold2d_ls", zoo_dir=tmp_path)
    (tmp_path / "manifold2d_ls" / "stage1.keras").unlink()
    with pytest.raises(PresetError, match=r"manifold2d_ls/stage1\.keras is missing"):
        zoo.load("manifold2d_ls", zoo_dir=tmp_path)


@pytest.mark.parametrize("name", RECIPES)
def test_a_recipe_says_how_to_train_it(name):
    dataset, gamma = name.split("_")[0], name.rsplit("_", 1)[1]
    with pytest.raises(
        zoo.ZooError,
        match=rf"recipe.*python -m kvae\.train {dataset} "
        rf"--gamma {gamma}",
    ):
        zoo.load(name)
    card = zoo.card(name)
    assert card["expected"] and card["expected_source"] and "GPU" in card["expected_gpu_time"]


def test_unknown_names_and_missing_zoo(tmp_path):
    with pytest.raises(zoo.ZooError, match=r"no zoo model named 'nope'.*fmnist_mse"):
        zoo.load("nope")
    with pytest.raises(zoo.ZooError, match=r"no zoo manifest at .*KVAE_ZOO"):
        zoo.list(tmp_path)
    model = zoo.load("manifold2d_ls")
    with pytest.raises(ValueError, match=r"stage\(s\) 1\. Received: stage=2"):
        model.generate(2, stage=2)


def test_export_adds_a_run_without_its_optimizer(tmp_path):
    run_dir = tmp_path / "run"
    assert (
        train.main(
            [
                "manifold2d",
                "--gamma",
                "learned",
                "--stage",
                "1",
                "--epochs",
                "1",
                "--steps-per-epoch",
                "20",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    shutil.copy(ZOO / zoo.MANIFEST, tmp_path / zoo.MANIFEST)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kvae.zoo",
            "export",
            str(run_dir),
            "--name",
            "tiny",
            "--description",
            "a test",
            "--command",
            "python -m kvae.train manifold2d",
            "--zoo",
            str(tmp_path),
            "--fid",
            "off",
            "--notes",
            "only a test model",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / zoo.MANIFEST).read_text())["models"]
    assert set(manifest) == set(zoo.manifest()["models"]) | {"tiny"}  # the others kept
    entry = manifest["tiny"]
    assert entry["notes"] == "only a test model"
    assert "**Note.** only a test model" in (tmp_path / "README.md").read_text()
    exported = tmp_path / entry["files"]["stage1"]["path"]
    assert exported.stat().st_size < (run_dir / "stage1.keras").stat().st_size
    assert getattr(keras.saving.load_model(exported), "optimizer", None) is None
    assert entry["check"]["num_images"] == zoo.CHECK_IMAGES
    assert (
        entry["metrics"]["mse"]
        == json.loads((run_dir / "zoo-eval" / "metrics.json").read_text())["mse"]
    )
    model = zoo.load("tiny", zoo_dir=tmp_path)
    assert model.generate(4, seed=1).shape == (4, 2)
    assert isinstance(model.stage1, kvae.VAE) and model.stage2 is None


def test_the_cli_lists_and_refuses_bad_input(tmp_path):
    listing = subprocess.run(
        [sys.executable, "-m", "kvae.zoo", "list"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0
    rows = [line.split("\t") for line in listing.stdout.strip().splitlines()]
    assert {row[0]: row[1] for row in rows} == {
        **{n: "trained" for n in SHIPPED},
        **{n: "recipe" for n in RECIPES},
    }
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "kvae.zoo",
            "export",
            str(tmp_path),
            "--name",
            "x",
            "--description",
            "y",
            "--command",
            "z",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "not a kvae.train run" in bad.stderr


def test_zoo_generation_is_the_two_stage_protocol_with_the_cards_latent_noise():
    """kvae.zoo.load gives a TwoStageVAE whose generation adds gamma_z noise
    as its card says, and equals a TwoStageVAE built from the same files."""
    model = zoo.load("fmnist_two_stage_learned")
    assert model.card["generation"]["latent_noise"] is True  # learned stage 2: Dai's noise
    assert model.latent_noise is True
    rebuilt = kvae.TwoStageVAE(
        kvae.load(ZOO / "fmnist_two_stage_learned" / "stage1.keras", compile=False),
        kvae.load(ZOO / "fmnist_two_stage_learned" / "stage2.keras", compile=False),
    )
    np.testing.assert_array_equal(model.generate(4, seed=3), rebuilt.generate(4, seed=3))
    quiet = kvae.TwoStageVAE(model.stage1, model.stage2, latent_noise=False)
    assert not np.array_equal(model.generate(4, seed=3), quiet.generate(4, seed=3))
    u = np.zeros((2, model.latent_dim), "float32")
    assert model.generate_from(u, seed=0).shape == (2, 28, 28, 1)


def test_kvae_evaluate_takes_a_preset_folder_as_the_cards_command_does(tmp_path):
    """The card's evaluation command names the model's folder (a preset):
    it evaluates both stages with the card's latent noise and reproduces the
    recorded check."""
    card = zoo.card("manifold2d_ls")
    assert card["evaluation"].startswith("python -m kvae.evaluate zoo/manifold2d_ls ")
    check = card["check"]
    assert (
        evaluate.main(
            [
                str(ZOO / "manifold2d_ls"),
                "--num-images",
                str(check["num_images"]),
                "--gain-images",
                str(check["num_images"]),
                "--fid",
                "off",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    measured = json.loads((tmp_path / "metrics.json").read_text())
    assert measured["model"]["stage1"] == str(ZOO / "manifold2d_ls" / "stage1.keras")
    # The check was recorded on another machine: a float32 forward pass on
    # another CPU's instruction set rounds differently (1e-6 relative in
    # issue 27's measurements), so 1e-4, which still tells the sampled-z MSE
    # from the MSE at mu (the mistake of reconstructing from the wrong z).
    assert abs(check["mse"] - check["mse_from_mu"]) > 1e-3 * check["mse"]
    assert measured["mse_from_mu"] == pytest.approx(check["mse_from_mu"], rel=1e-4)
    assert measured["mse"] == pytest.approx(check["mse"], rel=1e-4)


def test_the_manifests_recipes_are_written_from_kvae_recipes():
    """kvae/recipes.py is the one source of a recipe's card (its command,
    epochs, batch, the paper's numbers): the manifest holds what it gives."""
    from kvae import recipes as training_recipes

    cards = training_recipes.zoo_cards()
    assert sorted(cards) == sorted(RECIPES)
    for name, card in cards.items():
        assert zoo.card(name) == card
        config = training_recipes.resolve(card["dataset"], name.rsplit("_", 1)[1])
        assert (card["epochs"]["stage1"], card["batch_size"]) == (
            config.stage1.epochs,
            config.batch_size,
        )
