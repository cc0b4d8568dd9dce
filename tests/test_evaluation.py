"""Evaluation: the metric math against independent references, generation
modes, and `python -m kvae.evaluate` on a short two-stage Fashion-MNIST run."""

import csv
import hashlib
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import scipy.linalg
from keras import ops
from PIL import Image

import kvae
from helpers import fake_inception_dai2019, tiny_resnet, write_fake_inception_archive
from kvae import data, evaluate, evaluation, features, inception, metrics, seeds, train
from kvae.generation import latent_normalization_scale
from kvae.training.callbacks import LATENT_SUMMARY_EXAMPLES, latent_summary

# -- the Frechet distance ------------------------------------------------------------------


def scipy_frechet(features_a, features_b):
    """The FID formula as the reference implementations write it: np.cov and
    scipy.linalg.sqrtm of the product, real part."""
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root.real))


@pytest.mark.parametrize("count_a,count_b,dim", [(600, 500, 16), (3000, 2000, 64)])
def test_frechet_distance_equals_scipy(count_a, count_b, dim):
    rng = np.random.default_rng(dim)
    mixing = rng.normal(size=(dim, dim)) / math.sqrt(dim)
    features_a = rng.normal(size=(count_a, dim)) @ mixing
    features_b = rng.normal(size=(count_b, dim)) @ (mixing + 0.3 * np.eye(dim)) + 0.5
    got = metrics.frechet_distance(
        *metrics.gaussian_statistics(features_a), *metrics.gaussian_statistics(features_b)
    )
    np.testing.assert_allclose(got, scipy_frechet(features_a, features_b), rtol=1e-4)
    assert got > 1.0


def test_frechet_distance_of_a_set_against_itself_is_about_zero():
    features_a = np.random.default_rng(1).normal(size=(2000, 128)) * 3.0 + 1.0
    statistics = metrics.gaussian_statistics(features_a)
    assert abs(metrics.frechet_distance(*statistics, *statistics)) < 1e-6
    # Two halves of one distribution are close (only the estimation bias of
    # 1000 draws), a copy shifted by one standard deviation is not.
    halves = [metrics.gaussian_statistics(part) for part in np.split(features_a, 2)]
    shifted = metrics.gaussian_statistics(features_a + 3.0)
    assert (
        metrics.frechet_distance(*halves[0], *halves[1])
        < metrics.frechet_distance(*statistics, *shifted) / 5.0
    )
    np.testing.assert_allclose(
        metrics.frechet_distance(*statistics, *shifted), 128 * 9.0, rtol=1e-6
    )


def test_frechet_distance_rejects_mismatched_statistics():
    with pytest.raises(ValueError, match="Mismatched"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# -- variance law, inactive latents, bits per dimension, IWAE ------------------------------


def test_variance_law_and_inactive_latents_equal_hand_computation():
    # Three examples, three latents; sigma given through log sigma.
    mu = np.array([[1.0, 0.0, 0.2], [-1.0, 0.0, 0.2], [0.0, 0.0, 0.2]])
    sigma = np.array([[0.1, 1.0, 0.5], [0.1, 0.8, 0.5], [0.1, 0.9, 0.5]])
    law = metrics.variance_law(mu, np.log(sigma))
    # Var(mu) with 1/N: latent 0 has mean 0 and squares 1, 1, 0 -> 2/3.
    np.testing.assert_allclose(law["var_mu"], [2.0 / 3.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(law["mean_sigma2"], [0.01, (1.0 + 0.64 + 0.81) / 3.0, 0.25])
    np.testing.assert_allclose(law["mean_sigma"], [0.1, 0.9, 0.5])
    np.testing.assert_allclose(law["law"], [2.0 / 3.0 + 0.01, 2.45 / 3.0, 0.25])
    np.testing.assert_allclose(law["law_mean_sigma"], [2.0 / 3.0 + 0.1, 0.9, 0.5])
    # Inactive: mean sigma^2 >= 0.8; latent 1 has 0.8167.
    np.testing.assert_array_equal(
        metrics.inactive_latents(law["mean_sigma2"]), [False, True, False]
    )
    np.testing.assert_array_equal(metrics.inactive_latents(np.array([0.79999, 0.8])), [False, True])


def test_per_epoch_latent_summary_agrees_with_the_metrics():
    model = tiny_resnet(latent_dim=3)
    examples = np.random.default_rng(0).random((40, 8, 8, 1)).astype("float32")
    mu, log_sigma = model.encode(examples)
    law = metrics.variance_law(ops.convert_to_numpy(mu), ops.convert_to_numpy(log_sigma))
    summary = latent_summary(model, examples)
    assert summary["variance_law"] == pytest.approx(law["law"].mean(), abs=1e-6)
    assert summary["inactive"] == int((law["mean_sigma2"] >= 0.8).sum())


def test_bits_per_dim_conversion():
    assert metrics.bits_per_dim(784 * math.log(2.0) * 3.0, 784) == pytest.approx(3.0)
    assert metrics.bits_per_dim(-1.0, 1) == pytest.approx(-1.0 / math.log(2.0))


def test_log_mean_exp_is_stable_and_exact():
    values = np.array([[1000.0, -5.0], [1001.0, -6.0]])
    expected = [
        1000.0 + math.log((1.0 + math.e) / 2.0),
        math.log((math.exp(-5.0) + math.exp(-6.0)) / 2.0),
    ]
    np.testing.assert_allclose(metrics.log_mean_exp(values, axis=0), expected, rtol=1e-12)


# -- the ELBO -------------------------------------------------------------------------------


def numpy_terms(model, x, eps, gamma):
    """The loss terms of the paper's formulas in NumPy, per example."""
    mu, log_sigma = (ops.convert_to_numpy(t).astype(np.float64) for t in model.encode(x))
    z = mu + np.exp(log_sigma) * eps
    x_mean = ops.convert_to_numpy(model.decode(z.astype("float32"))).astype(np.float64)
    axes = tuple(range(1, x.ndim))
    recon = np.sum(
        (x - x_mean) ** 2 / (2.0 * gamma**2) + np.log(gamma) + 0.5 * np.log(2.0 * np.pi), axis=axes
    )
    kl = 0.5 * np.sum(mu**2 + np.exp(2.0 * log_sigma) - 2.0 * log_sigma - 1.0, axis=1)
    log_prior = np.sum(-0.5 * z**2 - 0.5 * np.log(2.0 * np.pi), axis=1)
    log_posterior = np.sum(-0.5 * eps**2 - log_sigma - 0.5 * np.log(2.0 * np.pi), axis=1)
    return recon, kl, -recon + log_prior - log_posterior


def test_elbo_of_a_fixed_sigma_model_is_minus_the_loss_terms():
    model = tiny_resnet(gamma="fixed", sigma=0.3, latent_dim=4)
    x = np.random.default_rng(0).random((6, 8, 8, 1)).astype("float64")
    eps = np.random.default_rng(1).normal(size=(6, 4))
    recon, kl, log_weight = numpy_terms(model, x, eps, gamma=0.3)
    got = metrics.elbo_terms(model, x.astype("float32"), eps.astype("float32"))
    np.testing.assert_allclose(got["log_likelihood"], -recon, rtol=1e-5)
    # atol: each KL term cancels to ~1e-3 from float32 numbers of order 1
    np.testing.assert_allclose(got["kl"], kl, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["log_likelihood"] - got["kl"], -(recon + kl), rtol=1e-5)
    np.testing.assert_allclose(got["log_weight"], log_weight, rtol=1e-4)
    # The same number as the training loss in inference mode (KL weight 1).
    terms = model.compute_terms(x.astype("float32"), noise=eps.astype("float32"))
    np.testing.assert_allclose(
        np.mean(got["log_likelihood"] - got["kl"]), -float(terms["loss"]), rtol=1e-5
    )


def test_elbo_pass_and_importance_weighted_bound():
    model = tiny_resnet(gamma="pixel", latent_dim=4)
    x = np.random.default_rng(2).random((10, 8, 8, 1)).astype("float32")
    single = metrics.elbo(model, x, samples=1, seed=3, batch_size=4)
    assert set(single) == {"elbo", "log_likelihood", "kl"} and single["elbo"].shape == (10,)
    again = metrics.elbo(model, x, samples=1, seed=3, batch_size=4)
    np.testing.assert_array_equal(single["elbo"], again["elbo"])
    bound = metrics.elbo(model, x, samples=64, seed=3, batch_size=4)
    assert bound["iwae"].shape == (10,)
    # log mean_k w_k >= mean_k log w_k example by example (Jensen), on the
    # same 64 draws: the eps of batch b come, in order, from its generator.
    # NumPy fills its draws in order: 64 draws of (B, 4) are one of (64 B, 4).
    mean_log_weight = []
    for index, start in enumerate(range(0, 10, 4)):
        batch = x[start : start + 4]
        rng = seeds.generator(seeds.reconstruction_batch_seed(3, index))
        eps = seeds.standard_normal(rng, (64 * len(batch), 4))
        log_w = metrics.elbo_terms(model, np.tile(batch, (64, 1, 1, 1)), eps)["log_weight"]
        mean_log_weight.append(np.reshape(log_w, (64, len(batch))).mean(axis=0))
    assert np.all(bound["iwae"] >= np.concatenate(mean_log_weight) - 1e-9)
    # The analytic-KL ELBO of 64 draws agrees with the Monte-Carlo form
    # mean_k log w_k (log p(x|z) + log p(z) - log q(z|x), no analytic KL) on
    # 512 independent draws, within 5 standard errors of the two estimates.
    rng = np.random.default_rng(11)
    draws = 512  # one batch: the 10 examples repeated, a fresh eps for each copy
    terms = metrics.elbo_terms(
        model, np.tile(x, (draws, 1, 1, 1)), rng.standard_normal((draws * 10, 4), dtype=np.float32)
    )
    log_weights = terms["log_weight"].reshape(draws, 10)
    monte_carlo = log_weights.mean(axis=0)
    per_draw = terms["log_likelihood"].reshape(draws, 10)  # the spread of one draw
    error = np.sqrt(log_weights.var(axis=0) / draws + per_draw.var(axis=0) / 64)
    assert np.all(np.abs(bound["elbo"] - monte_carlo) < 5 * error + 1e-6)
    assert not np.allclose(bound["elbo"], single["elbo"])  # 64 draws are not one


# -- generation -------------------------------------------------------------------------------


def test_generation_modes_temperature_and_alpha():
    model = tiny_resnet(gamma="learned", latent_dim=4)
    model.observation.log_gamma_variable.assign(math.log(0.2))
    means = ops.convert_to_numpy(model.generate(5, mode="mean", seed=4))
    np.testing.assert_array_equal(means, ops.convert_to_numpy(model.generate(5, seed=4)))
    shifted = ops.convert_to_numpy(model.generate(5, mode="mean", seed=4, alpha=1.5))
    np.testing.assert_allclose(shifted, means + 1.5 * 0.2, rtol=1e-5, atol=1e-6)
    frozen = ops.convert_to_numpy(model.generate(3, seed=5, temperature=0.0))
    np.testing.assert_allclose(frozen, np.repeat(frozen[:1], 3, axis=0), atol=1e-6)
    z = ops.convert_to_numpy(model.sample_prior(20000, seed=6, temperature=0.5))
    assert z.std() == pytest.approx(0.5, rel=0.02)
    with pytest.raises(ValueError, match="alpha"):
        model.generate(2, mode="sample", alpha=1.0)
    with pytest.raises(ValueError, match="shape"):
        model.generate_from(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="temperature"):
        model.generate(2, temperature=-1.0)


def test_latent_normalization_scale_is_one_over_the_mean_std():
    z = np.random.default_rng(0).normal(size=(5000, 3)) * np.array([1.0, 2.0, 3.0])
    assert latent_normalization_scale(z) == pytest.approx(1.0 / np.mean(z.std(axis=0)), rel=1e-12)
    assert latent_normalization_scale(z) == pytest.approx(1.0 / 2.0, rel=0.02)


def test_ancestral_samples_of_a_pixel_sigma_model_follow_its_sigma():
    model = tiny_resnet(gamma="pixel", latent_dim=4)
    z = model.sample_prior(200, seed=0)
    x_mean, log_gamma = model.decode_distribution(z)
    samples = ops.convert_to_numpy(model.generate_from(z, mode="sample", seed=1))
    standardized = (samples - ops.convert_to_numpy(x_mean)) / np.exp(
        ops.convert_to_numpy(log_gamma)
    )
    assert standardized.std() == pytest.approx(1.0, abs=0.03)
    assert abs(standardized.mean()) < 0.03


# -- a trained Fashion-MNIST model -------------------------------------------------------------

RUN_OPTIONS = [
    "--latent-dim",
    "16",
    "--fc-dim",
    "128",
    "--second-dim",
    "128",
    "--lr",
    "1e-3",
    "--lr2",
    "1e-3",
    "--epochs",
    "2",
    "--epochs2",
    "2",
    "--steps-per-epoch",
    "100",
    "--xla",
    "off",
    "--seed",
    "0",
    "--validate-every",
    "2",
]
"""A short two-stage run whose point is the pipeline: narrow fully connected
layers (the original InfoGAN's 1024 and the stage-2 MLP's 1024 made this
fixture the slowest part of the suite), validated at each stage's last
epoch only, and without XLA: its compilation cost more than 200 steps
gain from it (fixture 29 s against 38 s with --xla on, one run each)."""


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory):
    """A short two-stage computed-gamma run on real Fashion-MNIST."""
    if data.idx_folder("fashion_mnist", None) is None:
        message = "Fashion-MNIST not found: apt-get install dataset-fashion-mnist"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    run_dir = tmp_path_factory.mktemp("fashion") / "run"
    assert train.main(["fashion_mnist", *RUN_OPTIONS, "--out", str(run_dir)]) == 0
    return run_dir


def test_ancestral_samples_spread_around_their_means_by_gamma(fashion_run):
    model = kvae.load(fashion_run / "stage1.keras", compile=False)
    gamma = model.gamma()
    z = model.sample_prior(64, seed=0)
    means = ops.convert_to_numpy(model.generate_from(z, mode="mean"))
    samples = ops.convert_to_numpy(model.generate_from(z, mode="sample", seed=1))
    residuals = (samples - means).ravel()  # 64 * 784 = 50,176 draws of N(0, gamma^2)
    standard_error = gamma / math.sqrt(2 * len(residuals))
    assert abs(residuals.std() - gamma) < 5 * standard_error
    assert abs(residuals.mean()) < 5 * gamma / math.sqrt(len(residuals))
    # Mean generation is deterministic for a seed.
    np.testing.assert_array_equal(
        ops.convert_to_numpy(model.generate(8, seed=3)),
        ops.convert_to_numpy(model.generate(8, seed=3)),
    )


def test_variance_law_and_inactive_count_are_logged_each_epoch(fashion_run):
    with open(fashion_run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["stage"], row["epoch"]) for row in rows] == [
        ("1", "1"),
        ("1", "2"),
        ("2", "1"),
        ("2", "2"),
    ]
    # --validate-every 2: the 10,000 test images at each stage's second epoch
    assert [row["val_loss"] != "" for row in rows] == [False, True, False, True]
    assert [row["val_mse"] != "" for row in rows] == [False, True, False, True]
    assert (fashion_run / "stage1_best.keras").is_file()
    assert (fashion_run / "stage2_best.keras").is_file()
    last_stage1 = rows[1]
    model = kvae.load(fashion_run / "stage1.keras", compile=False)
    examples = data.load_split("fashion_mnist", "test")[:LATENT_SUMMARY_EXAMPLES]
    law = metrics.variance_law(*metrics.encode(model, examples))
    assert float(last_stage1["variance_law"]) == pytest.approx(law["law"].mean(), abs=1e-5)
    assert int(last_stage1["inactive"]) == int(metrics.inactive_latents(law["mean_sigma2"]).sum())


def test_reconstruction_gain_separates_active_from_inactive_latents(fashion_run):
    model = kvae.load(fashion_run / "stage1.keras", compile=False)
    examples = data.load_split("fashion_mnist", "test")[:300]
    mu, log_sigma = metrics.encode(model, examples)
    gains = metrics.reconstruction_gain(model, examples, mu)
    inactive = metrics.inactive_latents(metrics.variance_law(mu, log_sigma)["mean_sigma2"])
    assert 0 < inactive.sum() < 16, "the short run should leave some latents inactive"
    assert gains[~inactive].mean() > 10 * np.abs(gains[inactive]).mean()
    # Zeroing a latent by hand gives the same gain.
    zeroed = mu.copy()
    zeroed[:, 0] = 0.0
    by_hand = (
        metrics.squared_error(examples, ops.convert_to_numpy(model.decode(zeroed))).mean()
        - metrics.squared_error(examples, ops.convert_to_numpy(model.decode(mu))).mean()
    )
    assert gains[0] == pytest.approx(by_hand, rel=1e-4, abs=1e-9)


def subprocess_environment(tmp_path):
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_BACKEND": "tensorflow",
        "CUDA_VISIBLE_DEVICES": "",
        "KERAS_HOME": str(tmp_path / "keras-home"),
    }


def test_evaluate_command_on_a_two_stage_fashion_mnist_run(fashion_run, tmp_path):
    out = tmp_path / "eval"
    command = [
        sys.executable,
        "-m",
        "kvae.evaluate",
        str(fashion_run),
        "--out",
        str(out),
        "--num-images",
        "500",
        "--iwae",
        "4",
        "--gain-images",
        "200",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=subprocess_environment(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    metrics_json = json.loads((out / "metrics.json").read_text())
    for key in (
        "elbo_nats",
        "bits_per_dim",
        "elbo_bits_per_dim",
        "iwae_nats",
        "mse",
        "mse_from_mu",
        "variance_law",
        "variance_law_mean_sigma",
    ):
        assert np.isfinite(metrics_json[key]), key
    assert metrics_json["bits_per_dim"] == pytest.approx(
        -metrics_json["elbo_nats"] / (784 * math.log(2.0))
    )
    assert metrics_json["iwae_nats"] >= metrics_json["elbo_nats"]
    assert metrics_json["protocol"]["num_images"] == 500
    assert metrics_json["command"].startswith("python -m kvae.evaluate")
    latents = metrics_json["latents"]
    assert len(latents) == 16
    assert metrics_json["inactive_latents"] == sum(row["inactive"] for row in latents)
    assert metrics_json["inactive_latents"] + metrics_json["active_latents"] == 16
    fd = metrics_json["fd_fmnist"]
    assert all(fd[name] > 0 for name in ("rec", "gen1", "gen2"))
    assert "FD-fmnist" in fd["protocol"]["note"]
    # No Inception archive in this KERAS_HOME: no number, and the reason.
    assert metrics_json["fid"]["available"] is False
    assert "download-inception" in metrics_json["fid"]["reason"]
    assert "rec" not in metrics_json["fid"]
    assert metrics_json["stage2"]["latent_noise"] is False  # computed stage 2: Asperti
    for name in (
        "reconstructions",
        "samples_mean",
        "samples_ancestral",
        "samples_stage2",
        "latent_variance",
    ):
        with Image.open(out / f"{name}.png") as picture:
            assert picture.width > 100 and picture.height > 100, name
    with Image.open(out / "samples_ancestral.png") as picture:  # 4 rows of 10, x2
        assert picture.size == (2 * (10 * 30 + 2), 2 * (4 * 30 + 2))
    # The printed MSE is reproduced by the library on the same subset and seed.
    model = kvae.load(fashion_run / "stage1.keras", compile=False)
    examples = data.load_split("fashion_mnist", "test")[:500]
    # in the command's order: every forward pass moves the power-iteration
    # vectors of this network's spectrally normalized layers (Dai & Wipf's)
    metrics.encode(model, examples, batch_size=250)
    reconstructions = metrics.reconstruct(model, examples, sample=True, seed=0, batch_size=250)
    assert metrics_json["mse"] == pytest.approx(
        metrics.squared_error(examples, reconstructions).mean(), rel=1e-5
    )


def test_fid_on_the_papers_graph_end_to_end(fashion_run, tmp_path, monkeypatch, capsys):
    """`--fid on` with a stand-in archive: the recipe's protocol, the FID equal
    to NumPy features of the same images, the real statistics cached."""
    from kvae.two_stage import TwoStageVAE

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("KVAE_INCEPTION_SHA256", raising=False)
    archive = write_fake_inception_archive(tmp_path / "fake.tgz")
    monkeypatch.setattr(inception, "ARCHIVE_SIZE", archive.stat().st_size)  # the stand-in's
    arguments = ["--num-images", "128", "--fid", "on", "--inception", str(archive)]
    arguments += ["--gain-images", "20"]  # the latents' gains are not what this test is about
    runs = []
    for name, extra in (("dai", []), ("asperti", ["--fid-protocol", "asperti2020"])):
        out = tmp_path / name
        assert evaluate.main([str(fashion_run), "--out", str(out), *arguments, *extra]) == 0
        runs.append((json.loads((out / "metrics.json").read_text()), capsys.readouterr().out))
    (first, _), (second, printed) = runs
    fid, asperti = first["fid"], second["fid"]
    protocol = fid["protocol"]
    assert protocol["fid_protocol"] == "dai2019"  # Fashion-MNIST's recipe is Dai & Wipf's
    assert protocol["images_used"] == 100 and "first 128" in protocol["real_reference"]
    assert protocol["network_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert protocol["verified_by"] == "published size and classifications"  # provenance
    assert "inception-2015-12-05" in protocol["network"]
    assert asperti["protocol"]["fid_protocol"] == "asperti2020"
    assert asperti["protocol"]["images_used"] == 128 and asperti["gen1"] != fid["gen1"]
    # The second evaluation read FD-fmnist's real statistics from the cache
    # (same network, images and split) and gave the same distances.
    assert "FD-fmnist: real statistics read from" in printed
    assert "FID: real statistics read from" not in printed  # another protocol
    assert second["fd_fmnist"]["gen1"] == first["fd_fmnist"]["gen1"]
    cache = tmp_path / "keras-home" / "kvae" / "fid_statistics"
    assert len(list(cache.glob("*.npz"))) == 3  # dai2019 FID, asperti2020 FID, FD-fmnist
    # GEN-1 again, from NumPy: the same generated images, the stand-in's formula.
    model = TwoStageVAE(
        kvae.load(fashion_run / "stage1.keras", compile=False),
        kvae.load(fashion_run / "stage2.keras", compile=False),
    )
    generated = evaluation.generated_sets(model, 128, 0, 1.0, 250)["gen1"][:100]
    real = data.load_split("fashion_mnist", "test")[:100]
    low = generated.min(axis=(1, 2, 3), keepdims=True)
    stretched = (generated - low) / (generated.max(axis=(1, 2, 3), keepdims=True) - low) * 255
    expected = metrics.frechet_distance(
        *metrics.gaussian_statistics(fake_inception_dai2019(np.repeat(real, 3, -1))),
        *metrics.gaussian_statistics(fake_inception_dai2019(np.repeat(stretched, 3, -1))),
    )
    assert fid["gen1"] == pytest.approx(expected, rel=1e-4)


def test_evaluate_bad_input_exits_2_with_one_line(fashion_run, tmp_path, capsys):
    cases = [
        ([str(tmp_path / "absent"), "--out", str(tmp_path / "o")], "absent does not exist"),
        (
            [
                str(fashion_run),
                "--out",
                str(tmp_path / "o"),
                "--fid",
                "on",
                "--inception",
                str(tmp_path / "missing.tgz"),
            ],
            "python -m kvae.features download-inception",
        ),
        (
            [str(fashion_run), "--out", str(tmp_path / "o"), "--split", "validaton"],
            "invalid choice",
        ),
    ]
    (tmp_path / "lonely").mkdir()
    lonely = tmp_path / "lonely" / "model.keras"
    lonely.write_bytes((fashion_run / "stage1.keras").read_bytes())
    cases.append(([str(lonely), "--out", str(tmp_path / "o")], "--dataset"))
    for arguments, message in cases:
        assert evaluate.main(arguments) == 2, arguments
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("kvae.evaluate: error:"), error
        assert message in error[0], error


def test_evaluate_on_2d_data_draws_scatter_plots(tmp_path):
    run_dir = tmp_path / "run"
    assert (
        train.main(
            [
                "manifold2d",
                "--gamma",
                "pixel",
                "--epochs",
                "1",
                "--epochs2",
                "1",
                "--steps-per-epoch",
                "20",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    out = tmp_path / "eval"
    assert evaluate.main([str(run_dir), "--out", str(out), "--num-images", "300"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["fid"] == {"available": False, "reason": "FID is defined for images only"}
    assert "fd_fmnist" not in result and np.isfinite(result["elbo_nats"])
    assert result["bits_per_dim"] == pytest.approx(-result["elbo_nats"] / (2 * math.log(2.0)))
    assert sorted(result["pictures"]) == [
        "latent_variance",
        "reconstructions",
        "samples_ancestral",
        "samples_mean",
        "samples_stage2",
    ]


# -- feature extractors ---------------------------------------------------------------------------


def test_shipped_fmnist_classifier_classifies_and_separates_real_from_noise():
    folder = data.idx_folder("fashion_mnist", None)
    if folder is None:
        pytest.skip("Fashion-MNIST not found")
    classifier = keras.saving.load_model(features.FMNIST_CLASSIFIER, compile=False)
    test_x = data.load_idx_images(folder, "test").astype("float32") / 255.0
    test_y = data.load_idx_labels(folder, "test")
    predictions = np.argmax(ops.convert_to_numpy(classifier.predict(test_x, verbose=0)), axis=1)
    assert np.mean(predictions == test_y) > 0.88
    extractor = features.FashionMnistFeatures()
    train_x = data.load_idx_images(folder, "train")[:2000].astype("float32") / 255.0
    real_test = metrics.gaussian_statistics(extractor(test_x[:2000]))
    real_train = metrics.gaussian_statistics(extractor(train_x))
    blurred = metrics.gaussian_statistics(
        extractor(
            (test_x[:2000] + np.roll(test_x[:2000], 1, axis=1) + np.roll(test_x[:2000], 1, axis=2))
            / 3.0
        )
    )
    noise = metrics.gaussian_statistics(
        extractor(np.random.default_rng(0).random((2000, 28, 28, 1)).astype("float32"))
    )
    between_real = metrics.frechet_distance(*real_test, *real_train)
    assert (
        between_real
        < metrics.frechet_distance(*real_test, *blurred)
        < metrics.frechet_distance(*real_test, *noise)
    )
    with pytest.raises(ValueError, match="28x28x1"):
        extractor(np.zeros((2, 32, 32, 3)))


# -- evaluation splits ---------------------------------------------------------------------------


def test_load_split_orders_and_names_its_splits():
    first = data.load_split("manifold2d", "test", count=50, seed=3)
    np.testing.assert_array_equal(first, data.load_split("manifold2d", "test", count=50, seed=3))
    assert not np.allclose(first, data.load_split("manifold2d", "validation", count=50, seed=3))
    with pytest.raises(data.DataError, match="no 'test' split"):
        data.load_split("imagefolder:/tmp", "test")
    if data.idx_folder("fashion_mnist", None) is not None:
        test_images = data.load_split("fashion_mnist", "test")
        assert test_images.shape == (10000, 28, 28, 1) and test_images.dtype == np.uint8
        np.testing.assert_array_equal(data.load_split("fashion_mnist", "validation"), test_images)
