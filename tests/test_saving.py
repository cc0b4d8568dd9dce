"""`.keras` round trips in a fresh process, training resumption, and
checkpoints moving between the JAX and TensorFlow backends."""

import keras
import numpy as np
import pytest

import kvae
from helpers import model_outputs, random_images, run_worker, tiny_resnet


def _inputs(tmp_path, data_shape, latent_dim):
    rng = np.random.default_rng(5)
    path = tmp_path / "inputs.npz"
    np.savez(path, x=rng.random((4, *data_shape)).astype("float32"),
             z=rng.normal(size=(4, latent_dim)).astype("float32"))
    return path, np.load(path)


MODELS = {
    "resnet-computed": lambda: tiny_resnet("computed", seed=1),
    "resnet-pixel": lambda: tiny_resnet("pixel"),
    "resnet-pixel-floor": lambda: tiny_resnet("pixel", min_sigma=0.5),
    "infogan-learned": lambda: kvae.VAE((28, 28, 1), 4, net="infogan", gamma="learned"),
    "stage2-mse": lambda: kvae.VAE((6,), 6, net="stage2", net_config={"second_dim": 16}, gamma="mse"),
    "mlp-fixed-mixed": lambda: kvae.VAE((2,), 2, net="mlp", gamma="fixed", sigma=0.1,
                                        precision="mixed_float16"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_outputs_identical_in_a_fresh_process(tmp_path, name):
    model = MODELS[name]()
    model.compile()
    inputs_path, inputs = _inputs(tmp_path, model.data_shape, model.latent_dim)
    model.fit(inputs["x"], batch_size=2, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    expected = model_outputs(model, inputs)

    suffix = ".plain.npz" if name == "infogan-learned" else ".npz"  # plain keras.saving.load_model
    result = run_worker("tensorflow", "outputs", tmp_path / "model.keras", inputs_path, tmp_path / f"out{suffix}")
    assert result["class"] == "VAE"
    got = np.load(tmp_path / f"out{suffix}")
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_training_resumes_with_optimizer_and_gamma_state(tmp_path):
    model = tiny_resnet("computed", precision="mixed_float16")
    model.compile()
    model.fit(random_images(40), batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    iterations = int(model.optimizer.iterations)
    gamma_square = float(np.asarray(model.observation.gamma_square))
    assert iterations > 0 and gamma_square < 1.0

    result = run_worker("tensorflow", "resume", tmp_path / "model.keras")
    assert result["optimizer"] == "LossScaleOptimizer"
    assert result["before"] == {"iterations": iterations, "gamma_square": gamma_square}
    assert result["after"]["gamma_square"] <= gamma_square
    assert result["after"]["iterations"] in (iterations, iterations + 1)  # LSO may skip a step
    assert np.isfinite(result["loss"])


def test_adam_moments_survive_save_and_load(tmp_path):
    model = tiny_resnet("learned")
    model.compile()
    model.fit(random_images(16), batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = kvae.load(tmp_path / "model.keras")
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) > 2
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored), err_msg=saved.path)


def test_jax_trained_model_loads_on_tensorflow_with_the_same_outputs(tmp_path):
    run_worker("jax", "replay", tmp_path, "learned")
    inputs_path, inputs = _inputs(tmp_path, (8, 8, 1), 4)
    run_worker("jax", "outputs", tmp_path / "model.keras", inputs_path, tmp_path / "jax.npz")
    on_jax = np.load(tmp_path / "jax.npz")
    model = kvae.load(tmp_path / "model.keras", compile=False)
    for key, value in model_outputs(model, inputs).items():
        np.testing.assert_allclose(value, on_jax[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_fixed_gamma_files_from_before_sigma_was_a_weight_still_load():
    import math

    from kvae import observation

    layer = observation.FixedGamma(0.3)
    layer.load_own_variables({})  # such files store no variable for the layer
    assert float(np.exp(layer.log_gamma())) == pytest.approx(0.3)
    layer.load_own_variables({"0": np.array(math.log(0.2), "float32")})
    assert float(np.exp(layer.log_gamma())) == pytest.approx(0.2)
