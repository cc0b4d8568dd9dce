"""Encoder and decoder networks, chosen by name.

`build(net, data_shape, latent_dim, ...)` returns a pair of functional Keras
models: the encoder maps x to [mu, log_sigma] (float32), the decoder maps z to
the mean of p(x|z) (float32), or to [mean, log_sigma] when the observation
model is per-pixel.

| net | for | reference |
|---|---|---|
| `resnet` | square images, power-of-two side | Dai & Wipf 2019 (class Resnet) |
| `infogan` | images with sides divisible by 4 (28x28 MNIST) | Dai & Wipf 2019 (class Infogan) |
| `mlp` | low-dimensional vectors (2-D manifold) | Berger & Sebag 2020, Sec. 4.1 |
| `stage2` | stage-1 latent vectors | Dai & Wipf 2019, second stage |
| `collapse_dense` | 28x28 images | Asperti 2019, Table 1 (784-256-64-32) |
| `collapse_conv` | 28x28 images | Asperti 2019, Fig. 4 |
"""

import importlib

from kvae.options import check_positive_int

NETWORKS = {
    "resnet": {
        "module": "resnet",
        "defaults": {
            "base_dim": 32,
            "num_scale": 4,
            "block_per_scale": 1,
            "depth_per_block": 2,
            "kernel_size": 3,
            "fc_dim": 512,
        },
    },
    "infogan": {"module": "infogan", "defaults": {"fc_dim": 1024}},
    "mlp": {"module": "mlp", "defaults": {"width": 200, "num_blocks": 4}},
    "stage2": {"module": "stage2", "defaults": {"second_dim": 1024, "second_depth": 3}},
    "collapse_dense": {"module": "collapse", "defaults": {}, "builders": "dense"},
    "collapse_conv": {"module": "collapse", "defaults": {}, "builders": "conv"},
}
"""Each network: its module in kvae/networks/ (imported when the network is
built, as big_vision imports its models by name, so that options can be
checked without Keras), its default options, and for `collapse` which pair
of builders (build_dense_encoder, ...)."""

STAGE1_NETWORKS = tuple(net for net in NETWORKS if net != "stage2")
"""The networks of data (stage 1); `stage2` models stage-1 latents."""


def defaults(net):
    """A network's default options, a fresh dict."""
    if net not in NETWORKS:
        raise ValueError(f"Unknown net {net!r}; expected one of {', '.join(NETWORKS)}.")
    return dict(NETWORKS[net]["defaults"])


def resolve_config(net, net_config=None):
    """The network's full hyper-parameters: its defaults updated by
    `net_config`. Unknown networks or keys raise a ValueError."""
    base = defaults(net)
    net_config = dict(net_config or {})
    unknown = sorted(set(net_config) - set(base))
    if unknown:
        allowed = ", ".join(base) or "none"
        raise ValueError(
            f"Unknown option(s) {', '.join(unknown)} for net={net!r}; allowed: {allowed}."
        )
    config = {**base, **net_config}
    for key, value in config.items():
        check_positive_int(key, value)
    return config


def build(net, data_shape, latent_dim, pixel=False, dtype="float32", net_config=None):
    """(encoder, decoder) for `net` (see the module table)."""
    config = resolve_config(net, net_config)
    entry = NETWORKS[net]
    module = importlib.import_module(f"kvae.networks.{entry['module']}")
    prefix = f"build_{entry['builders']}_" if "builders" in entry else "build_"
    data_shape = tuple(data_shape)
    encoder = getattr(module, prefix + "encoder")(data_shape, latent_dim, dtype, **config)
    decoder = getattr(module, prefix + "decoder")(data_shape, latent_dim, dtype, pixel, **config)
    return encoder, decoder


def count_trainable(model):
    """Number of trainable parameters (BN moving statistics excluded)."""
    total = 0
    for weight in model.trainable_weights:
        size = 1
        for dim in weight.shape:
            size *= dim
        total += size
    return total
