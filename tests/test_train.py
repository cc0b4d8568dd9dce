"""The training command: recipes, bad input, every dataset end to end, the
run folder, resume after SIGKILL, and the stop on a non-finite loss."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import kvae
from helpers import assert_close_in_ulps, write_idx
from kvae import data, recipes, train
from kvae.config import Schedule
from kvae.errors import ConfigError
from kvae.training import loop

SMALL = [
    "--steps-per-epoch",
    "2",
    "--epochs",
    "1",
    "--epochs2",
    "1",
    "--batch-size",
    "4",
    "--latent-dim",
    "3",
    "--second-dim",
    "8",
    "--second-depth",
    "1",
]
"""Options that make any recipe small enough for a CI run."""

TINY_RESNET = ["--base-dim", "4", "--num-scale", "2", "--fc-dim", "8"]


def read_rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def environment():
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": "tensorflow",
        "CUDA_VISIBLE_DEVICES": "",
    }


# -- recipes ----------------------------------------------------------------------

# Typed from ../shared/reference/original-code.md, independently of kvae/recipes.py.
BALANCING_CELEBA = {  # B.4 committed configuration; B.3 KL weight (2 * 64 / 64)^2
    "net": "resnet",
    "latent_dim": 64,
    "batch_size": 100,
    "kl_weight": 4.0,
    "epochs": 70,
    "lr": 5e-5,
    "lr_epochs": 60,
    "lr_fac": 0.5,
    "epochs2": 140,
    "lr2": 5e-5,
    "lr_epochs2": 120,
    "lr_fac2": 0.5,
    "second_dim": 4096,
    "second_depth": 3,
    "gamma": "computed",
    "gamma2": "computed",
    "net_config": {
        "base_dim": 32,
        "num_scale": 4,
        "block_per_scale": 1,
        "depth_per_block": 2,
        "kernel_size": 3,
        "fc_dim": 512,
    },
}
DAI_CIFAR = {  # A.5 / A.8 command-line defaults; 1000 + 2000 epochs (issue #9)
    "net": "infogan",
    "latent_dim": 64,
    "batch_size": 64,
    "kl_weight": 1.0,
    "epochs": 1000,
    "lr": 1e-4,
    "lr_epochs": 150,
    "lr_fac": 0.5,
    "epochs2": 2000,
    "lr2": 1e-4,
    "lr_epochs2": 300,
    "lr_fac2": 0.5,
    "second_dim": 1024,
    "second_depth": 3,
    "gamma": "learned",
    "gamma2": "learned",
    "net_config": {"fc_dim": 1024},
}


@pytest.mark.parametrize(
    "dataset,gamma,expected",
    [("celeba", "computed", BALANCING_CELEBA), ("cifar10", "learned", DAI_CIFAR)],
)
def test_recipes_equal_the_originals_field_by_field(dataset, gamma, expected):
    config = recipes.resolve(dataset, gamma).to_json()
    for key, value in expected.items():
        assert config[key] == value, key
    assert config["steps_per_epoch"] is None  # floor(N / batch), as the originals


def test_recipe_overrides_and_derived_values():
    config = recipes.resolve("celeba", "computed", {"latent_dim": 128, "lr": 1e-3, "base_dim": 16})
    assert config.kl_weight == 1.0  # (2 * 64 / 128)^2
    assert config.stage1.lr == 1e-3 and config.net_config["base_dim"] == 16
    assert config.stage1.epochs == 70
    assert recipes.resolve("celeba", "computed", {"kl_weight": 0.5}).kl_weight == 0.5
    assert recipes.resolve("cifar10", "computed").kl_weight == 1.0  # (2 * 32 / 64)^2
    assert recipes.resolve("celeba", "learned").latent_dim == 128  # Dai's README command
    pixel = recipes.resolve("celeba", "pixel")
    assert pixel.gamma == "pixel" and pixel.stage1.lr_epochs == 40 and pixel.gamma2 == "learned"
    switched = recipes.resolve("celeba", "computed", {"net": "infogan"})
    assert switched.net_config == {"fc_dim": 1024}  # the recipe's resnet options dropped
    # the library names arguments, never a command-line flag (the command adds it)
    with pytest.raises(ConfigError, match="base_dim does not apply to net 'infogan'") as raised:
        recipes.resolve("cifar10", "learned", {"base_dim": 8})
    assert raised.value.argument == "base_dim"
    with pytest.raises(ConfigError, match=r"needs sigma > 0") as raised:
        recipes.resolve("mnist", "fixed")
    assert raised.value.argument == "sigma"
    assert recipes.resolve("mnist", "pixel", {"min_sigma": 0.01}).min_sigma == 0.01
    with pytest.raises(
        ConfigError, match="min_sigma is a floor on the per-pixel sigma of gamma=.pixel."
    ):
        recipes.resolve("mnist", "learned", {"min_sigma": 0.01})
    # the per-pixel sigma on the 2-D manifold warms up (issue 17); nothing else does
    assert recipes.resolve("manifold2d", "pixel").sigma_warmup == 2000
    assert recipes.resolve("manifold2d", "pixel", {"sigma_warmup": 0}).sigma_warmup == 0
    for dataset, gamma in (("manifold2d", "learned"), ("sphere", "pixel"), ("mnist", "pixel")):
        assert recipes.resolve(dataset, gamma).sigma_warmup == 0
    with pytest.raises(ConfigError, match="sigma_warmup shares the per-pixel sigma"):
        recipes.resolve("manifold2d", "learned", {"sigma_warmup": 10})


def test_learning_rate_schedule_is_the_originals_step_decay():
    schedule = Schedule(epochs=200, lr=5e-5, lr_epochs=60, lr_fac=0.5)
    rates = [schedule.learning_rate(epoch) for epoch in (0, 59, 60, 119, 120, 185)]
    assert rates == [5e-5, 5e-5, 2.5e-5, 2.5e-5, 1.25e-5, 5e-5 * 0.5**3]
    assert Schedule(2000, 1e-3, 0, 0.5).learning_rate(1000) == 1e-3


def test_dry_run_prints_one_json_object_with_the_parameter_counts():
    """--dry-run prints the configuration without TensorFlow; with --params
    it builds the networks and counts their parameters."""
    quick = subprocess.run(
        [sys.executable, "-m", "kvae.train", "celeba", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(),
    )
    assert quick.returncode == 0 and quick.stderr == "", quick.stderr
    assert set(json.loads(quick.stdout)) == {"config"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kvae.train",
            "celeba",
            "--gamma",
            "computed",
            "--dry-run",
            "--params",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(),
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert set(output) == {"config", "params"}
    assert output["config"]["epochs"] == 70
    # original-code.md E: CelebA base 32, 4 scales, kappa 64; stage 2 width 4096.
    assert output["params"]["stage1"] == {"encoder": 3333344, "decoder": 15988323}
    assert output["params"]["stage2"] == {"encoder": 34361472, "decoder": 34095168}


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["svhn"], "unknown dataset 'svhn'"),
        (["fashion-mnist"], "Did you mean 'fashion_mnist'?"),
        (["mnist", "--data-dir", "{tmp}/missing"], "is not a readable folder"),
        (["imagefolder:{tmp}"], "no images"),
        (["mnist", "--epochs", "0"], "--epochs: must be an integer >= 1"),
        (["mnist", "--batch-size", "-3"], "--batch-size: must be an integer >= 1"),
        (["mnist", "--epochs2", "0"], "--epochs2: must be an integer >= 1"),
        (["--resume", "--out", "{tmp}/nothing"], "no run to resume"),
        (["mnist", "--gamma", "fixed"], "needs sigma > 0 (the fixed gamma); gamma='mse'"),
        (["mnist", "--gamma", "fixed"], "(--sigma)"),  # the command names the flag
        (["cifar10", "--gamma", "learned", "--base-dim", "8"], "base_dim does not apply to net"),
        (
            ["mnist", "--net", "mlp", "--fc-dim", "8"],
            "fc_dim does not apply to net 'mlp' (--fc-dim)",
        ),
        (["mnist", "--net", "resnet"], "power of two"),
    ],
)
def test_bad_input_exits_2_with_one_line(arguments, message, tmp_path, capsys):
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    assert (
        train.main(
            arguments + ["--out", str(tmp_path / "run")] if "--out" not in arguments else arguments
        )
        == 2
    )
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvae.train: error:"), captured.err
    assert message in lines[0]


def test_bad_input_in_a_fresh_process_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kvae.train", "mnist", "--batch-size", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    # TensorFlow may print its own start-up lines first; ours is the last and only one.
    ours = [line for line in result.stderr.splitlines() if line.startswith("kvae.train")]
    assert ours == [result.stderr.strip().splitlines()[-1]]


# -- every dataset, both stages --------------------------------------------------------


def check_run(run_dir, shape, epochs=(1, 1)):
    config = json.loads((run_dir / "config.json").read_text())
    rows = read_rows(run_dir)
    assert [(row["stage"], int(row["epoch"])) for row in rows] == (
        [("1", e) for e in range(1, epochs[0] + 1)] + [("2", e) for e in range(1, epochs[1] + 1)]
    )
    for row in rows:
        for column in ("loss", "mse", "kl", "gamma", "val_loss"):
            assert np.isfinite(float(row[column])), (column, row)
    stage1 = kvae.load(run_dir / "stage1.keras", compile=False)
    stage2 = kvae.load(run_dir / "stage2.keras", compile=False)
    for stage in ("1", "2"):
        kvae.load(run_dir / f"stage{stage}_best.keras", compile=False)
        losses = [float(row["val_loss"]) for row in rows if row["stage"] == stage]
        if losses.index(min(losses)) == len(losses) - 1:  # the last epoch is the best
            best, latest = (run_dir / f"stage{stage}{end}.keras" for end in ("_best", ""))
            assert best.read_bytes() == latest.read_bytes()
    assert stage1.data_shape == shape and stage2.data_shape == (config["latent_dim"],)
    samples = kvae.TwoStageVAE(stage1, stage2).generate(3, seed=0)
    assert samples.shape == (3, *shape) and np.isfinite(samples).all()
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        f"stage{s}_epoch{e:04d}.png"
        for s, count in (("1", epochs[0]), ("2", epochs[1]))
        for e in range(1, count + 1)
    ]
    assert list((run_dir / "logs" / "stage1" / "train").glob("events.out.tfevents.*"))
    return config


@pytest.mark.parametrize(
    "name,shape,extra",
    [
        ("celeba", (64, 64, 3), TINY_RESNET),
        ("cifar10", (32, 32, 3), ["--net", "infogan"]),
    ],
)
def test_tfds_datasets_train_both_stages(name, shape, extra, tmp_path, monkeypatch):
    """The two tfds image shapes with a network of their own through the
    command; mnist and fashion_mnist from tfds load as test_data.py checks
    and train as the idx files below do (the same 28x28 network)."""
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    monkeypatch.delenv("KVAE_DATA_DIR", raising=False)
    (tmp_path / "tfds").mkdir()
    run_dir = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=8):
        code = train.main(
            [name, *SMALL, *extra, "--data-dir", str(tmp_path / "tfds"), "--out", str(run_dir)]
        )
    assert code == 0
    check_run(run_dir, shape)


def test_idx_files_train_both_stages(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
    run_dir = tmp_path / "run"
    assert (
        train.main(
            [
                "fashion_mnist",
                *SMALL,
                "--gamma",
                "mse",
                "--xla",
                "on",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    config = check_run(run_dir, (28, 28, 1))
    assert config["gamma"] == "mse" and config["xla"] == "on"
    # The XLA choice is part of the checkpoint, so a resumed run keeps it.
    assert kvae.load(run_dir / "stage1.keras").jit_compile is True


def test_image_folder_trains_both_stages(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "pictures").mkdir()
    for index in range(10):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
            tmp_path / "pictures" / f"{index}.jpg"
        )
    run_dir = tmp_path / "run"
    assert (
        train.main(
            [
                f"imagefolder:{tmp_path / 'pictures'}",
                *SMALL,
                *TINY_RESNET,
                "--image-size",
                "16",
                "--gamma",
                "pixel",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    check_run(run_dir, (16, 16, 3))


@pytest.mark.parametrize(
    "name,extra,shape",
    [
        ("manifold2d", ["--gamma", "learned"], (2,)),
        ("sphere", ["--gamma", "fixed", "--sigma", "0.1", "--dim", "5", "--radius", "2"], (5,)),
    ],
)
def test_synthetic_datasets_train_both_stages(name, extra, shape, tmp_path):
    run_dir = tmp_path / "run"
    assert train.main([name, *SMALL, *extra, "--out", str(run_dir)]) == 0
    check_run(run_dir, shape)


# -- the run folder: resume, --stage 2, non-finite loss -----------------------------------


SIGKILL_STEPS = 100
"""Steps per epoch of the killed run: an epoch of about 1.5 s here, which
the kill lands in the middle of."""


def test_resume_after_sigkill_in_the_third_epoch(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "kvae.train",
        "manifold2d",
        "--gamma",
        "computed",
        "--epochs",
        "4",
        "--epochs2",
        "1",
        "--steps-per-epoch",
        str(SIGKILL_STEPS),
        "--seed",
        "3",
        "--out",
        str(run_dir),
    ]
    process = subprocess.Popen(
        command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    state_file = run_dir / "state.json"
    deadline = time.time() + 240
    finished = {}  # epochs done -> when state.json first said so
    while time.time() < deadline and 2 not in finished:
        try:
            done = json.loads(state_file.read_text())["stage1"]["epochs_done"]
            finished.setdefault(done, time.time())
        except (OSError, ValueError):
            pass
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.01)
    assert 2 in finished, "stage 1 did not finish two epochs in 240 s"
    # a third of the second epoch's duration into the third
    time.sleep((finished[2] - finished.get(1, finished[2] - 1.0)) / 3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    state = json.loads(state_file.read_text())
    assert state["stage1"]["epochs_done"] == 2, "the kill did not land in the third epoch"
    killed_gamma = kvae.load(run_dir / "stage1.keras", compile=False).gamma()

    result = subprocess.run(
        [sys.executable, "-m", "kvae.train", "--resume", "--out", str(run_dir)],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout
    rows = read_rows(run_dir)
    assert [(row["stage"], int(row["epoch"])) for row in rows] == (
        [("1", e) for e in range(1, 5)] + [("2", 1)]
    )
    gammas = [float(row["gamma"]) for row in rows if row["stage"] == "1"]
    # The computed gamma only falls: a restart from gamma = 1 would jump up.
    assert all(later <= earlier for earlier, later in zip(gammas, gammas[1:])), gammas
    assert gammas[2] <= killed_gamma + 1e-6
    final = kvae.load(run_dir / "stage1.keras")
    assert int(final.optimizer.iterations) == 4 * SIGKILL_STEPS
    assert json.loads(state_file.read_text())["pending"] == []


def test_stage2_alone_and_continued_runs_keep_their_config(tmp_path, capsys):
    run_dir = tmp_path / "run"
    common = ["--steps-per-epoch", "3", "--batch-size", "8", "--out", str(run_dir)]
    assert train.main(["manifold2d", "--stage", "1", "--epochs", "1", *common]) == 0
    assert [row["stage"] for row in read_rows(run_dir)] == ["1"]
    assert not (run_dir / "stage2.keras").exists()
    assert train.main(["manifold2d", "--stage", "1", "--epochs", "1", *common]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert train.main(["--resume", "--lr", "0.5", "--out", str(run_dir)]) == 2
    assert "lr differs from the run's config.json (0.001); a continued run keeps it (--lr)" in (
        capsys.readouterr().err
    )
    assert (
        train.main(["--stage", "2", "--epochs2", "2", "--second-dim", "16", "--out", str(run_dir)])
        == 0
    )
    rows = read_rows(run_dir)
    assert [(row["stage"], row["epoch"]) for row in rows] == [("1", "1"), ("2", "1"), ("2", "2")]
    assert kvae.load(run_dir / "stage2.keras").net_config["second_dim"] == 16
    # Nothing left to do: a further --resume finishes at once.
    assert train.main(["--resume", "--out", str(run_dir)]) == 0
    assert len(read_rows(run_dir)) == 3


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    def exploding(schedule, epoch):
        return schedule.lr if epoch < 1 else 1e30

    monkeypatch.setattr(Schedule, "learning_rate", exploding)
    run_dir = tmp_path / "run"
    code = train.main(
        [
            "sphere",
            "--gamma",
            "learned",
            "--epochs",
            "3",
            "--steps-per-epoch",
            "20",
            "--out",
            str(run_dir),
        ]
    )
    assert code == 3
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("kvae.train: stopped: non-finite loss")
    assert "stage 1, epoch 2" in message and "stage1.keras (epoch 1)" in message
    assert [row["epoch"] for row in read_rows(run_dir)] == ["1"]
    model = kvae.load(run_dir / "stage1.keras")
    assert int(model.optimizer.iterations) == 20
    assert all(np.isfinite(np.asarray(w)).all() for w in model.weights)
    assert not list(run_dir.glob("*.next.keras"))


def test_sigma_schedule_moves_the_fixed_gamma_each_epoch(tmp_path):
    schedule = tmp_path / "schedule.csv"
    # A learned-gamma run's metrics.csv: only the stage-1 rows count, in epoch order.
    schedule.write_text("epoch,stage,gamma\n2,1,0.5\n1,1,1.0\n1,2,9.0\n3,1,0.25\n")
    run_dir = tmp_path / "run"
    assert (
        train.main(
            [
                "manifold2d",
                "--gamma",
                "fixed",
                "--sigma-schedule",
                str(schedule),
                "--epochs",
                "4",
                "--steps-per-epoch",
                "3",
                "--stage",
                "1",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["sigma_schedule"] == [1.0, 0.5, 0.25] and config["sigma"] == 1.0
    gammas = [float(row["gamma"]) for row in read_rows(run_dir)]
    np.testing.assert_allclose(gammas, [1.0, 0.5, 0.25, 0.25], rtol=1e-6)
    model = kvae.load(run_dir / "stage1.keras", compile=False)
    assert model.gamma() == pytest.approx(0.25, rel=1e-6)


@pytest.mark.parametrize(
    "content,message",
    [
        ("epoch,sigma\n1,-1\n", "finite sigma > 0"),
        ("epoch,width\n1,2\n", "columns epoch and sigma"),
    ],
)
def test_bad_sigma_schedules_exit_2(content, message, tmp_path, capsys):
    schedule = tmp_path / "schedule.csv"
    schedule.write_text(content)
    assert (
        train.main(
            [
                "manifold2d",
                "--gamma",
                "fixed",
                "--sigma-schedule",
                str(schedule),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert message in capsys.readouterr().err
    schedule.write_text("epoch,sigma\n1,0.5\n")
    assert (
        train.main(
            [
                "manifold2d",
                "--gamma",
                "learned",
                "--sigma-schedule",
                str(schedule),
                "--out",
                str(tmp_path / "run2"),
            ]
        )
        == 2
    )
    assert "sigma_schedule applies only to gamma 'fixed' (--sigma-schedule)" in (
        capsys.readouterr().err
    )


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_run_folder_of_the_previous_code_loads_and_resumes(tmp_path):
    """tests/fixtures/run_v0_1 was written by kvae before the run-folder and
    configuration modules existed: its checkpoints give the outputs that code
    recorded, its config.json still resolves, and it resumes for one more
    epoch of each stage."""
    old = FIXTURES / "run_v0_1"
    recorded = np.load(old / "outputs.npz")
    for stage in ("1", "2"):
        model = kvae.load(old / f"stage{stage}.keras", compile=False)
        mean, log_gamma = model.decode_distribution(recorded["z"])
        # recorded on another machine: within a few float32 ulps, not bit-equal
        assert_close_in_ulps(mean, recorded[f"mean{stage}"], err_msg=f"mean{stage}")
        assert_close_in_ulps(log_gamma, recorded[f"log_gamma{stage}"])
        # negative control: weights rounded through float16 once (a lossy
        # save or conversion) move the outputs outside that tolerance
        model.set_weights([w.astype(np.float16).astype(np.float32) for w in model.get_weights()])
        with pytest.raises(AssertionError):
            assert_close_in_ulps(
                model.decode_distribution(recorded["z"])[0], recorded[f"mean{stage}"]
            )
    run_dir = tmp_path / "run"
    shutil.copytree(old, run_dir)
    saved = json.loads((old / "config.json").read_text())
    assert train.main(["--resume", "--out", str(run_dir), "--epochs", "2", "--epochs2", "2"]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert list(config) == list(saved) + list(NEW_KEYS)  # old keys kept, in order
    assert {
        **saved,
        "epochs": 2,
        "epochs2": 2,
        "distribute": "none",
        "devices": None,
        "steps_per_execution": "auto",
        "sigma_warmup": 0,
        "validate_every": 1,
        "keep_best": "full",
    } == config
    rows = read_rows(run_dir)
    # in training order: the old run's two epochs, then the two resumed ones
    assert [(row["stage"], row["epoch"]) for row in rows] == [
        ("1", "1"),
        ("2", "1"),
        ("1", "2"),
        ("2", "2"),
    ]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["stage1"]["epochs_done"] == 2 and state["stage2"]["epochs_done"] == 2
    resumed = kvae.load(run_dir / "stage1.keras")
    assert int(resumed.optimizer.iterations) == 10  # 5 old steps + 5 new ones


CONFIG_JSON_KEYS = (
    "dataset",
    "data_dir",
    "image_size",
    "dim",
    "radius",
    "gamma",
    "sigma",
    "sigma_schedule",
    "min_sigma",
    "kl_weight",
    "gamma2",
    "net",
    "net_config",
    "latent_dim",
    "second_dim",
    "second_depth",
    "batch_size",
    "steps_per_epoch",
    "epochs",
    "lr",
    "lr_epochs",
    "lr_fac",
    "epochs2",
    "lr2",
    "lr_epochs2",
    "lr_fac2",
    "stage",
    "precision",
    "xla",
    "seed",
    "source",
)
"""config.json's keys before kvae.config existed, written out again here."""

NEW_KEYS = (
    "distribute",
    "devices",
    "steps_per_execution",
    "sigma_warmup",
    "validate_every",
    "keep_best",
)
"""Keys added since (issues 14, 17, 18 and 34); an old config.json gets their defaults."""


def test_one_configuration_source_for_config_json_the_parser_and_the_recipes():
    import dataclasses

    from kvae import config as run_config
    from kvae import networks

    # old runs' config.json keys first, in order; options added since at the end
    assert run_config.FIELDS[: len(CONFIG_JSON_KEYS)] == CONFIG_JSON_KEYS
    assert run_config.FIELDS[len(CONFIG_JSON_KEYS) :] == NEW_KEYS
    flags = {action.dest: action for action in train.build_parser()._actions}
    for field in dataclasses.fields(run_config.RunConfig):
        if "schedule" in field.metadata:  # a stage's schedule: epochs, lr, ... (and ...2)
            for key in run_config.SCHEDULE_OPTIONS:
                name = run_config.schedule_key(key, field.metadata["schedule"])
                assert name in flags and flags[name].default is None, name
        elif field.metadata["cli"]:
            assert field.name in flags and flags[field.name].default is None, field.name
            if field.metadata["choices"]:
                assert tuple(flags[field.name].choices) == tuple(field.metadata["choices"])
    for net in networks.STAGE1_NETWORKS:  # every network option, from the network itself
        for option in networks.defaults(net):
            assert option in flags, option
    # Dai & Wipf's command-line defaults are RunConfig's: their recipe changes nothing.
    resolved = recipes.resolve("mnist", "learned").to_json()
    defaults = run_config.defaults()
    for key, value in resolved.items():
        if key not in ("dataset", "gamma", "gamma2", "net_config", "source"):
            assert value == defaults[key], key
    assert resolved["net_config"] == networks.defaults("infogan")
    # a config.json round-trips through RunConfig; an old one gets the new keys' defaults
    assert run_config.RunConfig.from_json(resolved).to_json() == resolved
    old = {key: resolved[key] for key in CONFIG_JSON_KEYS}
    assert run_config.RunConfig.from_json(old).to_json() == {
        **resolved,
        **{key: defaults[key] for key in NEW_KEYS},
    }


def test_results_do_not_depend_on_steps_per_execution_validate_every_or_a_resume(tmp_path):
    """Four steps per call of the compiled step (10 steps per epoch: calls
    of 4, 4 and 2) train what one step per call trains: the same metrics
    rows, gamma included (it moves every step inside the multi-step loop).
    The same run validating every second epoch (and the last) trains the
    same too: validation leaves the training noise alone. The one-step run
    stops after its first epoch and resumes: a resumed run reads the
    batches and draws the noise of an uninterrupted one."""
    common = [
        "manifold2d",
        "--gamma",
        "computed",
        "--epochs2",
        "1",
        "--steps-per-epoch",
        "10",
        "--seed",
        "5",
    ]
    first_epoch = ["--epochs", "1", "--stage", "1", "--steps-per-execution", "1"]
    one = str(tmp_path / "one")
    assert train.main([*common, *first_epoch, "--out", one]) == 0
    assert train.main(["--resume", "--out", one, "--epochs", "2", "--stage", "both"]) == 0
    assert (
        train.main(
            [
                *common,
                "--epochs",
                "2",
                "--steps-per-execution",
                "4",
                "--validate-every",
                "2",
                "--out",
                str(tmp_path / "four"),
            ]
        )
        == 0
    )
    one, four = read_rows(tmp_path / "one"), read_rows(tmp_path / "four")
    assert [(row["stage"], row["epoch"]) for row in four] == [("1", "1"), ("1", "2"), ("2", "1")]
    assert len(one) == len(four) == 3
    for expected, got in zip(one, four):
        for column in ("loss", "mse", "gamma", "kl", "variance_law", "inactive"):
            assert float(got[column]) == pytest.approx(float(expected[column]), rel=1e-5), column
    # validated: stage 1 at epoch 2 only, stage 2 at its last (and only) epoch
    assert [row["val_loss"] == "" for row in four] == [True, False, False]
    for expected, got in zip(one[1:], four[1:]):
        assert float(got["val_loss"]) == pytest.approx(float(expected["val_loss"]), rel=1e-5)
        assert float(got["val_mse"]) == pytest.approx(float(expected["val_mse"]), rel=1e-5)
    state = json.loads((tmp_path / "four" / "state.json").read_text())
    assert state["stage1"]["best_epoch"] == 2
    saved = json.loads((tmp_path / "four" / "config.json").read_text())
    assert (saved["steps_per_execution"], saved["validate_every"]) == (4, 2)
    assert json.loads((tmp_path / "one" / "config.json").read_text())["steps_per_execution"] == 1
    model = kvae.load(tmp_path / "four" / "stage1.keras")
    assert int(model.optimizer.iterations) == 20  # the planned steps, no more
    assert [loop.validation_batch_size(b) for b in (4, 64, 100, 256, 300)] == [
        256,
        256,
        300,
        256,
        300,
    ]
    assert loop.validation_epochs(0, 7, 3) == [3, 6, 7]
    assert loop.validation_epochs(3, 7, 3) == [6, 7]  # counted from the stage's start
    assert loop.validation_epochs(0, 3, 1) == [1, 2, 3]


def test_the_best_checkpoint_is_the_latest_file_and_outlives_its_replacement(tmp_path):
    from kvae import runs

    latest, best = tmp_path / "stage1.next.keras", tmp_path / "stage1_best.next.keras"
    latest.write_bytes(b"epoch 3")
    best.write_bytes(b"epoch 1")  # a stale one is replaced
    runs.same_file(latest, best)
    assert best.read_bytes() == b"epoch 3"
    newer = tmp_path / "newer"
    newer.write_bytes(b"epoch 4")
    os.replace(newer, latest)  # the next epoch's commit
    assert best.read_bytes() == b"epoch 3" and latest.read_bytes() == b"epoch 4"
