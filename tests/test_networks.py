"""Networks: parameter-exact with the originals, and their structure."""

import keras
import numpy as np
import pytest

from kvae import networks
from kvae.networks import layers as kvae_layers

# (net, data_shape, latent_dim, net_config, encoder, decoder): trainable
# parameters of the originals (original-code.md, section E).
ORIGINAL_COUNTS = [
    ("resnet", (64, 64, 3), 64, {"base_dim": 32, "num_scale": 4}, 3_333_344, 15_988_323),
    ("resnet", (32, 32, 3), 64, {"base_dim": 32, "num_scale": 3}, 1_135_840, 4_054_627),
    ("resnet", (64, 64, 3), 128, {"base_dim": 32, "num_scale": 4}, 3_399_008, 16_250_467),
    ("resnet", (64, 64, 3), 64, {"base_dim": 16, "num_scale": 4}, 1_147_056, 4_065_843),
    ("stage2", (64,), 64, {"second_dim": 1024, "second_depth": 3}, 2_305_152, 2_235_456),
    ("stage2", (128,), 128, {"second_dim": 1024, "second_depth": 3}, None, None),
]


@pytest.mark.parametrize("net,shape,latent,config,encoder_count,decoder_count", ORIGINAL_COUNTS)
def test_parameter_counts_equal_the_originals(
    net, shape, latent, config, encoder_count, decoder_count
):
    encoder, decoder = networks.build(net, shape, latent, net_config=config)
    if encoder_count is None:  # only the total is documented for this one
        assert networks.count_trainable(encoder) + networks.count_trainable(decoder) == 4_905_344
        return
    assert networks.count_trainable(encoder) == encoder_count
    assert networks.count_trainable(decoder) == decoder_count


def test_stage2_wide_totals():
    for width, total in [(2048, 17_457_344), (4096, 68_456_640)]:
        encoder, decoder = networks.build("stage2", (64,), 64, net_config={"second_dim": width})
        assert networks.count_trainable(encoder) + networks.count_trainable(decoder) == total


def test_resnet_structure_follows_dai_and_wipf():
    encoder, decoder = networks.build(
        "resnet", (32, 32, 3), 8, net_config={"base_dim": 8, "num_scale": 3}
    )
    batch_norms = [
        layer
        for layer in encoder.layers + decoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert batch_norms and all(
        layer.epsilon == 1e-5 and layer.momentum == 0.999 for layer in batch_norms
    )
    shortcuts = [
        layer
        for layer in encoder.layers
        if layer.name.endswith("_shortcut") and isinstance(layer, keras.layers.Conv2D)
    ]
    assert shortcuts and all(layer.kernel_size == (3, 3) for layer in shortcuts)
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in encoder.layers)
    assert decoder.get_layer("reshape").output.shape[1:] == (2, 2, 128)  # 8 * 2^4 at 2x2
    assert [o.shape for o in encoder.outputs] == [(None, 8), (None, 8)]
    assert decoder.get_layer("x_mean").activation is keras.activations.sigmoid


def test_decoder_widths_are_capped_at_1024():
    assert networks.resnet.decoder_widths(64, 32) == [
        (2, 1024),
        (4, 512),
        (8, 256),
        (16, 128),
        (32, 64),
        (64, 32),
    ]
    assert networks.resnet.decoder_widths(256, 32)[0] == (2, 1024)


@pytest.mark.parametrize(
    "net,shape",
    [
        ("resnet", (16, 16, 3)),
        ("infogan", (28, 28, 1)),
        ("mlp", (2,)),
        ("stage2", (6,)),
        ("collapse_dense", (28, 28, 1)),
        ("collapse_conv", (28, 28, 1)),
    ],
)
@pytest.mark.parametrize("pixel", [False, True])
def test_output_shapes_and_dtypes(net, shape, pixel):
    config = {"base_dim": 4, "num_scale": 2, "fc_dim": 8} if net == "resnet" else None
    encoder, decoder = networks.build(net, shape, 5, pixel=pixel, net_config=config)
    x = np.random.default_rng(0).random((3, *shape)).astype("float32")
    mu, log_sigma = encoder(x)
    assert mu.shape == log_sigma.shape == (3, 5)
    decoded = decoder(np.zeros((3, 5), "float32"))
    decoded = decoded if pixel else [decoded]
    assert len(decoded) == (2 if pixel else 1)
    for tensor in decoded:
        assert tuple(tensor.shape) == (3, *shape)
        assert keras.backend.standardize_dtype(tensor.dtype) == "float32"
    if net not in ("mlp", "stage2"):
        values = keras.ops.convert_to_numpy(decoded[0])
        assert values.min() >= 0 and values.max() <= 1


def test_infogan_encoder_is_spectrally_normalised():
    encoder, _ = networks.build("infogan", (28, 28, 1), 64)
    sn_layers = [
        layer
        for layer in encoder.layers
        if isinstance(layer, (kvae_layers.SpectralNormConv2D, kvae_layers.SpectralNormDense))
    ]
    assert len(sn_layers) == 4
    # 1,088 + 131,200 + 256 (BN) + 6,423,552 + 2,048 (BN) + 131,200 by hand.
    assert networks.count_trainable(encoder) == 6_689_344
    narrow, _ = networks.build("infogan", (28, 28, 1), 64, net_config={"fc_dim": 256})
    # 1,088 + 131,200 + 256 + 6,272 * 256 + 256 + 512 (BN) + 256 * 128 + 128.
    assert networks.count_trainable(narrow) == 1_771_840
    # log sigma = log(softplus + 1e-6) never goes below log(1e-6).
    _, log_sigma = encoder(np.zeros((2, 28, 28, 1), "float32"))
    assert np.all(keras.ops.convert_to_numpy(log_sigma) >= np.log(1e-6) - 1e-6)


def test_spectral_normalize_against_numpy_svd():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 4, 5)).astype("float32")
    matrix = kernel.reshape(-1, 5)
    u = rng.normal(size=(36, 1)).astype("float32")
    for _ in range(100):  # the persistent u converges to the top singular vector
        normalized, u = kvae_layers.spectral_normalize(kernel, u)
        u = keras.ops.convert_to_numpy(u)
    top_singular_value = np.linalg.svd(matrix, compute_uv=False)[0]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(normalized), kernel / top_singular_value, rtol=1e-4
    )


@pytest.mark.parametrize("shape", [(28, 28, 1), (48, 48, 3), (32, 16, 3)])
def test_resnet_rejects_sides_that_are_not_powers_of_two(shape):
    with pytest.raises(ValueError, match=r"power of\s+two.*" + str(shape[0])):
        networks.build("resnet", shape, 4)


def test_unknown_net_and_options_are_rejected():
    with pytest.raises(ValueError, match="'transformer'.*resnet, infogan, mlp, stage2"):
        networks.build("transformer", (8,), 2)
    with pytest.raises(ValueError, match="depth.*second_dim, second_depth"):
        networks.build("stage2", (8,), 2, net_config={"depth": 3})
    with pytest.raises(ValueError, match="base_dim=0"):
        networks.build("resnet", (8, 8, 1), 2, net_config={"base_dim": 0})


def test_debiased_moving_average_equals_bias_corrected_ema():
    rng = np.random.default_rng(3)
    values = rng.normal(size=20)
    momentum, biased, debiased = 0.9, 0.0, 123.0  # the initial value is ignored
    for step, value in enumerate(values, start=1):
        biased = momentum * biased + (1 - momentum) * value
        debiased = float(
            kvae_layers.debiased_moving_average(debiased, value, momentum, float(step - 1))
        )
        np.testing.assert_allclose(debiased, biased / (1 - momentum**step), rtol=1e-5)


def test_batch_norm_moving_statistics_are_zero_debiased():
    layer = kvae_layers.batch_norm("bn", "float32")
    x = np.random.default_rng(4).normal(3.0, 2.0, size=(64, 5)).astype("float32")
    layer(x, training=True)
    # After one update the debiased averages equal the batch moments.
    np.testing.assert_allclose(np.asarray(layer.moving_mean), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), x.var(0), rtol=1e-4)
    second = x[::-1] * 0.5
    layer(second, training=True)
    expected = (0.999 * 0.001 * x.mean(0) + 0.001 * second.mean(0)) / (1 - 0.999**2)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), expected, rtol=1e-4)
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    moving_std = np.sqrt(np.asarray(layer.moving_variance) + 1e-5)
    np.testing.assert_allclose(
        inference, (x - np.asarray(layer.moving_mean)) / moving_std, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_batch_norm_counts_every_update_under_mixed_precision(precision):
    """The debiasing count is float32 and stays so inside a 16-bit call:
    bfloat16 cannot count past 256, float16 past 2048."""
    layer = kvae_layers.batch_norm("bn", precision)
    x = np.random.default_rng(4).normal(3.0, 2.0, size=(64, 5)).astype("float32")
    layer(x, training=True)
    layer.update_count.assign(4096.0)
    average = np.asarray(layer.moving_mean).copy()
    layer(x * 0.5, training=True)
    assert float(np.asarray(layer.update_count)) == 4097.0
    expected = debiased_reference(average, (x * 0.5).mean(0), 4096)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), expected, rtol=1e-2)


def debiased_reference(average, value, count, momentum=0.999):
    """d_t of a zero-debiased moving average in NumPy (float64)."""
    return (momentum * (1 - momentum**count) * average + (1 - momentum) * value) / (
        1 - momentum ** (count + 1)
    )


# Asperti 2019, Fig. 4: (output shape, parameters) of each encoder layer, 16
# latents. Batch-norm rows count gamma, beta and the two moving statistics.
COLLAPSE_CONV_FIGURE = [
    ((14, 14, 16), 160),
    ((14, 14, 16), 64),
    ((14, 14, 32), 4640),
    ((7, 7, 32), 9248),
    ((7, 7, 32), 128),
    ((4, 4, 32), 9248),
    ((4, 4, 32), 9248),
    ((4, 4, 32), 128),
    ((2, 2, 32), 4128),
    ((2, 2, 32), 4128),
    ((2, 2, 32), 128),
    ((1, 1, 32), 4128),
    ((1, 1, 16), 528),
    ((1, 1, 16), 528),
]


def test_collapse_conv_encoder_matches_the_papers_figure():
    encoder, _ = networks.build("collapse_conv", (28, 28, 1), 16)
    rows = []
    for layer in encoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            rows.append((tuple(layer.output.shape[1:]), 4 * layer.gamma.shape[0]))
        elif isinstance(layer, keras.layers.Conv2D):
            rows.append((tuple(layer.output.shape[1:]), layer.count_params()))
    assert rows == COLLAPSE_CONV_FIGURE
    assert networks.count_trainable(encoder) == 46_208


def test_collapse_dense_is_784_256_64_32_16():
    encoder, decoder = networks.build("collapse_dense", (28, 28, 1), 16)
    dense = [layer.units for layer in encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert dense == [256, 64, 32, 16, 16]  # the last two: the mu and log sigma heads
    assert networks.count_trainable(encoder) == (784 * 256 + 256) + (256 * 64 + 64) + (
        64 * 32 + 32
    ) + 2 * (32 * 16 + 16)
    assert [layer.units for layer in decoder.layers if isinstance(layer, keras.layers.Dense)] == [
        32,
        64,
        256,
        784,
    ]
    with pytest.raises(ValueError, match="28x28"):
        networks.build("collapse_dense", (32, 32, 3), 16)


def test_collapse_conv_uses_keras_batch_norm_defaults():
    encoder, decoder = networks.build("collapse_conv", (28, 28, 1), 16)
    norms = [
        layer
        for layer in encoder.layers + decoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 8
    assert all(layer.momentum == 0.99 and layer.epsilon == 1e-3 for layer in norms)
