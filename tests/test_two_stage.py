"""kvae.TwoStageVAE and the seeded generation protocol: the protocol
recomputed in NumPy from its definition (the order of the draws), the
stage-1 path equal to VAE.generate, the preset folder round trip, and its
sha256 check."""

import json
import math

import numpy as np
import pytest
from keras import ops

import kvae
from helpers import tiny_resnet
from kvae import generation, losses


@pytest.fixture(scope="module")
def pair():
    stage1 = tiny_resnet("learned", latent_dim=4, seed=1)
    stage1.observation.log_gamma_variable.assign(math.log(0.2))
    stage2 = kvae.VAE(
        (4,),
        3,
        net="stage2",
        net_config={"second_dim": 8, "second_depth": 1},
        gamma="learned",
        seed=2,
    )
    stage2.observation.log_gamma_variable.assign(math.log(0.5))
    return stage1, stage2


def decode(model, z):
    mean, log_gamma = model.decode_distribution(np.asarray(z, np.float32))
    return ops.convert_to_numpy(mean), ops.convert_to_numpy(log_gamma)


def numpy_protocol(
    stage1, stage2, n, seed, mode, temperature=1.0, latent_noise=False, latent_scale=None
):
    """The protocol as its docstring defines it, written out again: one
    generator, read for the prior, then the gamma_z noise, then the pixels."""
    rng = np.random.default_rng(seed)
    dim = stage2.latent_dim if stage2 is not None else stage1.latent_dim
    latents = rng.standard_normal((n, dim), dtype=np.float32) * np.float32(temperature)
    if stage2 is not None:
        z_mean, log_gamma_z = decode(stage2, latents)
        if latent_noise:
            z_mean = z_mean + np.exp(log_gamma_z) * rng.standard_normal(
                z_mean.shape, dtype=np.float32
            )
        latents = z_mean * np.float32(latent_scale if latent_scale is not None else 1.0)
    x_mean, log_gamma = decode(stage1, latents)
    if mode == "sample":
        return x_mean + np.exp(log_gamma) * rng.standard_normal(x_mean.shape, dtype=np.float32)
    return x_mean


@pytest.mark.parametrize("mode", ["mean", "sample"])
@pytest.mark.parametrize("latent_noise,latent_scale", [(False, None), (True, None), (True, 1.7)])
def test_two_stage_generation_follows_the_protocol(pair, mode, latent_noise, latent_scale):
    stage1, stage2 = pair
    model = kvae.TwoStageVAE(stage1, stage2, latent_noise=latent_noise, latent_scale=latent_scale)
    got = model.generate(5, mode=mode, seed=11, temperature=0.8)
    expected = numpy_protocol(stage1, stage2, 5, 11, mode, 0.8, latent_noise, latent_scale)
    assert got.dtype == np.float32 and got.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got, model.generate(5, mode=mode, seed=11, temperature=0.8))
    assert not np.allclose(got, model.generate(5, mode=mode, seed=12, temperature=0.8))


def test_stage_one_is_vae_generate_and_the_default_latent_noise_rule(pair):
    stage1, stage2 = pair
    model = kvae.TwoStageVAE(stage1, stage2)
    assert model.latent_noise is True  # a learned stage 2: Dai & Wipf's gamma_z noise
    assert (
        kvae.TwoStageVAE(
            stage1, kvae.VAE((4,), 3, net="stage2", net_config={"second_dim": 8})
        ).latent_noise
        is False
    )
    for mode in ("mean", "sample"):
        np.testing.assert_array_equal(
            model.generate(4, mode=mode, seed=3, stage=1), stage1.generate(4, mode=mode, seed=3)
        )
        np.testing.assert_allclose(
            stage1.generate(4, mode=mode, seed=3),
            numpy_protocol(stage1, None, 4, 3, mode),
            rtol=1e-5,
            atol=1e-6,
        )
    u = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    z_mean, log_gamma_z = decode(stage2, u)
    rng = np.random.default_rng(5)
    z = z_mean + np.exp(log_gamma_z) * rng.standard_normal(z_mean.shape, dtype=np.float32)
    np.testing.assert_allclose(
        model.generate_from(u, seed=5), decode(stage1, z)[0], rtol=1e-5, atol=1e-6
    )
    assert model.stages == (1, 2) and model.latent_dim == 3 and model.latent_dim_of(1) == 4
    with pytest.raises(ValueError, match=r"stage\(s\) 1, 2\. Received: stage=3"):
        model.generate(2, stage=3)
    with pytest.raises(ValueError, match="latent_dim=3"):
        kvae.TwoStageVAE(tiny_resnet(latent_dim=3), stage2)
    with pytest.raises(ValueError, match="finite"):
        model.generate_from(np.full((1, 3), np.nan, "float32"))
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.generate(0)


def test_latent_scale_is_estimated_on_the_models_own_generations(pair):
    stage1, stage2 = pair
    model = kvae.TwoStageVAE(stage1, stage2, latent_noise=False)
    scale = model.estimate_latent_scale(draws=3000)
    assert scale == model.estimate_latent_scale(draws=3000)
    u = np.random.default_rng(3000).standard_normal((3000, 3), dtype=np.float32)
    z = decode(stage2, u)[0]
    assert scale == pytest.approx(1.0 / np.mean(z.std(axis=0)), rel=1e-5)


def test_gaussian_sample_is_one_formula_for_numpy_and_tensors():
    rng = np.random.default_rng(0)
    mu, log_sigma, eps = (rng.normal(size=(4, 3)).astype("float32") for _ in range(3))
    expected = mu.astype(np.float64) + np.exp(log_sigma.astype(np.float64)) * eps
    from_numpy = losses.gaussian_sample(mu, log_sigma, eps)
    from_tensors = ops.convert_to_numpy(
        losses.gaussian_sample(ops.convert_to_tensor(mu), ops.convert_to_tensor(log_sigma), eps)
    )
    assert from_numpy.dtype == np.float32
    np.testing.assert_allclose(from_numpy, expected, rtol=1e-6)
    np.testing.assert_allclose(from_tensors, expected, rtol=1e-6)
    posterior = generation.posterior_draw(mu, log_sigma, np.random.default_rng(9))
    np.testing.assert_allclose(
        posterior,
        mu + np.exp(log_sigma) * np.random.default_rng(9).standard_normal((4, 3), dtype=np.float32),
        rtol=1e-6,
    )


def test_a_preset_folder_round_trips_and_refuses_a_changed_file(pair, tmp_path):
    stage1, stage2 = pair
    model = kvae.TwoStageVAE(
        stage1,
        stage2,
        latent_noise=False,
        latent_scale=1.25,
        name="tiny",
        card={"description": "a test"},
    )
    model.save(tmp_path / "preset")
    config = json.loads((tmp_path / "preset" / "config.json").read_text())
    assert config["format"] == "kvae.TwoStageVAE" and set(config["files"]) == {"stage1", "stage2"}
    loaded = kvae.load(tmp_path / "preset")
    assert isinstance(loaded, kvae.TwoStageVAE)
    provenance = loaded.card.pop("provenance")
    assert (loaded.name, loaded.latent_noise, loaded.latent_scale, loaded.card) == (
        "tiny",
        False,
        1.25,
        {"description": "a test"},
    )
    assert provenance["source"] == str(tmp_path / "preset")
    assert set(provenance["files"]) == {"stage1", "stage2"}
    for mode in ("mean", "sample"):
        np.testing.assert_array_equal(
            loaded.generate(3, mode=mode, seed=2), model.generate(3, mode=mode, seed=2)
        )
    single = kvae.TwoStageVAE(stage1)
    single.save(tmp_path / "single")
    assert kvae.load(tmp_path / "single").stages == (1,)
    target = tmp_path / "preset" / "stage2.keras"
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0xFF
    target.write_bytes(bytes(content))
    with pytest.raises(kvae.presets.PresetError, match=r"sha256 mismatch for .*stage2\.keras"):
        kvae.load(tmp_path / "preset")
    with pytest.raises(kvae.presets.PresetError, match="without a kvae preset"):
        kvae.load(tmp_path)
