"""`.keras` round trips in a fresh process, training resumption, and
checkpoints moving between the JAX and TensorFlow backends."""

import json

import numpy as np
import pytest

import kvae
from helpers import model_outputs, random_images, run_worker, run_worker_batch, tiny_resnet


def _inputs(tmp_path, data_shape, latent_dim):
    rng = np.random.default_rng(5)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "inputs.npz"
    np.savez(
        path,
        x=rng.random((4, *data_shape)).astype("float32"),
        z=rng.normal(size=(4, latent_dim)).astype("float32"),
    )
    return path, np.load(path)


MODELS = {
    "resnet-computed": lambda: tiny_resnet("computed", seed=1),
    "resnet-pixel": lambda: tiny_resnet("pixel"),
    "resnet-pixel-floor": lambda: tiny_resnet("pixel", min_sigma=0.5),
    "infogan-learned": lambda: kvae.VAE((28, 28, 1), 4, net="infogan", gamma="learned"),
    "stage2-mse": lambda: kvae.VAE(
        (6,), 6, net="stage2", net_config={"second_dim": 16}, gamma="mse"
    ),
    "mlp-fixed-mixed": lambda: kvae.VAE(
        (2,), 2, net="mlp", gamma="fixed", sigma=0.1, precision="mixed_float16"
    ),
}


@pytest.fixture(scope="module")
def fresh_process_outputs(tmp_path_factory):
    """Every model trained a step, saved, and its outputs computed here and
    in one fresh TensorFlow process (kvae.load, or plain keras for the
    infogan case) that loads all the files."""
    folder = tmp_path_factory.mktemp("fresh")
    expected, jobs = {}, []
    for name in sorted(MODELS):
        model = MODELS[name]()
        model.compile()
        inputs_path, inputs = _inputs(folder / name, model.data_shape, model.latent_dim)
        model.fit(inputs["x"], batch_size=2, epochs=1, verbose=0)
        model.save(folder / name / "model.keras")
        expected[name] = model_outputs(model, inputs)
        suffix = ".plain.npz" if name == "infogan-learned" else ".npz"  # plain load_model
        jobs.append(
            ("outputs", folder / name / "model.keras", inputs_path, folder / name / f"out{suffix}")
        )
    results = run_worker_batch("tensorflow", jobs, folder)
    return {
        name: (expected[name], np.load(job[3]), result)
        for name, job, result in zip(sorted(MODELS), jobs, results)
    }


@pytest.mark.parametrize("name", sorted(MODELS))
def test_outputs_identical_in_a_fresh_process(fresh_process_outputs, name):
    expected, got, result = fresh_process_outputs[name]
    assert result["class"] == "VAE"
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
    assert result["scale_before"] == float(np.asarray(model.optimizer.dynamic_scale))
    # The resumed step did something: an optimizer step that moved the
    # weights, or a skipped float16 step that halved the loss scale.
    if result["after"]["iterations"] == iterations + 1:
        assert result["weights_moved"] > 0 and result["scale_after"] >= result["scale_before"]
    else:
        assert result["after"]["iterations"] == iterations
        assert result["scale_after"] == result["scale_before"] / 2
    # and the computed gamma followed its rule from the restored state.
    expected = min(gamma_square, 0.99 * gamma_square + 0.01 * result["mse"])
    assert result["after"]["gamma_square"] == pytest.approx(expected, rel=1e-5)
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
    inputs_path, inputs = _inputs(tmp_path, (8, 8, 1), 4)
    run_worker_batch(
        "jax",
        [
            ("replay", tmp_path, "learned"),  # trains and saves model.keras
            ("outputs", tmp_path / "model.keras", inputs_path, tmp_path / "jax.npz"),
        ],
        tmp_path,
    )
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


# -- every custom serializable class round-trips through a .keras file -------------------


def _layer_cases():
    from kvae import observation
    from kvae.networks import layers

    return {
        "SpectralNormDense": (lambda: layers.SpectralNormDense(5, kernel_stddev=0.1), (3,)),
        "SpectralNormConv2D": (
            lambda: layers.SpectralNormConv2D(4, kernel_size=3, strides=1, truncated=False),
            (6, 6, 2),
        ),
        "DebiasedBatchNormalization": (
            lambda: layers.DebiasedBatchNormalization(momentum=0.9, epsilon=1e-5),
            (6,),
        ),
        "ComputedGamma": (lambda: observation.ComputedGamma(), None),
        "LearnedGamma": (lambda: observation.LearnedGamma(), None),
        "FixedGamma": (lambda: observation.FixedGamma(0.3), None),
        "PixelGamma": (lambda: observation.PixelGamma(min_sigma=0.05), (4,)),
    }


@pytest.mark.parametrize(
    "name",
    [
        "SpectralNormDense",
        "SpectralNormConv2D",
        "DebiasedBatchNormalization",
        "ComputedGamma",
        "LearnedGamma",
        "FixedGamma",
        "PixelGamma",
    ],
)
def test_custom_layers_round_trip_with_config_state_and_outputs(tmp_path, name):
    """A layer in a small model, its state moved away from the initial
    values, saved and loaded: same class, config, variables and outputs."""
    import keras

    make, input_shape = _layer_cases()[name]
    layer = make()
    rng = np.random.default_rng(0)
    if input_shape is None:
        layer.build(None)
    else:
        holder = keras.Sequential([keras.Input(input_shape), layer])
    if name == "DebiasedBatchNormalization":  # training steps move the moving statistics
        for _ in range(3):
            holder(rng.normal(size=(8, 6)).astype("float32"), training=True)
    for variable in layer.variables:
        if variable.path.endswith("update_count"):
            continue
        variable.assign(
            np.asarray(variable) + rng.uniform(0.1, 0.5, variable.shape).astype("float32")
        )
    if input_shape is None:
        # A gamma layer takes no input: its serialized config through JSON and its
        # variables through the store that .keras files use.
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
        restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
        restored.build(None)
        store = {}
        layer.save_own_variables(store)
        restored.load_own_variables(store)
    else:
        holder.save(tmp_path / "holder.keras")
        loaded = keras.saving.load_model(tmp_path / "holder.keras", safe_mode=True)
        restored = loaded.layers[-1]
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    assert len(restored.variables) == len(layer.variables)
    assert layer.variables or name == "PixelGamma"  # PixelGamma holds only its floor
    for saved, back in zip(layer.variables, restored.variables):
        np.testing.assert_array_equal(np.asarray(back), np.asarray(saved), err_msg=saved.path)
    if input_shape is not None:
        x = rng.normal(size=(2, *input_shape)).astype("float32")
        np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(layer(x)), rtol=1e-6)
    else:
        np.testing.assert_array_equal(
            np.asarray(restored.log_gamma()), np.asarray(layer.log_gamma())
        )


def test_checkpoints_and_runs_with_the_removed_beta_nll_option_load_when_it_was_off():
    """kvae had a --beta-nll option (f9c4285 until issue 17's warm-up):
    models and config.json files of those versions carry beta_nll; 0 loads,
    anything else is refused by name."""
    from kvae import config as run_config
    from kvae.errors import ConfigError

    model = kvae.VAE((6,), 2, net="mlp", net_config={"width": 8, "num_blocks": 1}, gamma="pixel")
    saved = {**model.get_config(), "beta_nll": 0.0}
    assert kvae.VAE.from_config(saved).gamma_mode == "pixel"
    with pytest.raises(ValueError, match="beta_nll=0.5: this was saved by an older kvae"):
        kvae.VAE.from_config({**saved, "beta_nll": 0.5})
    completed = run_config.RunConfig.from_json({"dataset": "manifold2d", "beta_nll": 0.0})
    assert "beta_nll" not in completed.to_json() and completed.dataset == "manifold2d"
    with pytest.raises(ConfigError, match="beta_nll"):
        run_config.RunConfig.from_json({"dataset": "manifold2d", "beta_nll": 1.0})


# -- the checkpoint writer of kvae.train: files written while training goes on -----------


def _saved_variables(model):
    return [*model.variables, *model.optimizer.variables, *model.metrics_variables]


def _zip_json(path, name):
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(name))


@pytest.mark.parametrize("name", ["stage2-mse", "mlp-fixed-mixed"])
def test_checkpoint_writer_writes_the_values_it_was_handed_as_model_save_does(tmp_path, name):
    from kvae.training.checkpoints import CheckpointWriter

    model = MODELS[name]()
    model.compile()
    model.fit(
        np.random.default_rng(0).random((8, *model.data_shape)).astype("float32"),
        batch_size=4,
        epochs=1,
        verbose=0,
    )
    model.save(tmp_path / "reference.keras")
    writer = CheckpointWriter(model)
    events = []
    for round_ in range(2):  # the first write also builds the writer's copy of the model
        target = tmp_path / f"written{round_}.keras"
        writer.write(target)
        writer.then(lambda target=target: events.append(target.exists()))
        if round_ == 0:
            writer.wait()
    # Training goes on while the thread writes: every value changes at once.
    for variable in _saved_variables(model):
        variable.assign(np.full(variable.shape, 3, variable.dtype))
    writer.close()
    assert events == [True, True]
    assert _zip_json(tmp_path / "written1.keras", "config.json") == _zip_json(
        tmp_path / "reference.keras", "config.json"
    )
    reference = kvae.load(tmp_path / "reference.keras")
    for round_ in range(2):
        written = kvae.load(tmp_path / f"written{round_}.keras")
        pairs = list(zip(_saved_variables(written), _saved_variables(reference)))
        assert len(pairs) == len(_saved_variables(model)) > 0
        assert not np.array_equal(np.asarray(model.variables[0]), np.asarray(written.variables[0]))
        for got, expected in pairs:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(expected), err_msg=got.path)
        np.testing.assert_array_equal(
            np.asarray(written.seed_generator.state), np.asarray(reference.seed_generator.state)
        )


def test_checkpoint_writer_raises_a_failed_write_and_skips_what_follows_it(tmp_path):
    from kvae.training.checkpoints import CheckpointWriter

    model = MODELS["stage2-mse"]()
    model.compile()
    model.optimizer.build(model.trainable_variables)
    (tmp_path / "a-file").write_text("")
    writer = CheckpointWriter(model)
    writer.write(tmp_path / "a-file" / "stage1.keras")  # its folder is a file
    followed = []
    writer.then(lambda: followed.append(True))
    with pytest.raises(OSError):
        writer.close()
    assert followed == []
