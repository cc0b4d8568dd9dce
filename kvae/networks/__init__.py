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

from types import SimpleNamespace

from kvae.networks import collapse, infogan, mlp, resnet, stage2

_MODULES = {
    "resnet": resnet,
    "infogan": infogan,
    "mlp": mlp,
    "stage2": stage2,
    "collapse_dense": SimpleNamespace(
        DEFAULTS=collapse.DEFAULTS,
        build_encoder=collapse.build_dense_encoder,
        build_decoder=collapse.build_dense_decoder,
    ),
    "collapse_conv": SimpleNamespace(
        DEFAULTS=collapse.DEFAULTS,
        build_encoder=collapse.build_conv_encoder,
        build_decoder=collapse.build_conv_decoder,
    ),
}

NETWORKS = tuple(_MODULES)

STAGE1_NETWORKS = tuple(net for net in NETWORKS if net != "stage2")
"""The networks of data (stage 1); `stage2` models stage-1 latents."""


def defaults(net):
    """A network's default options (its module's DEFAULTS), a fresh dict."""
    if net not in _MODULES:
        raise ValueError(f"Unknown net {net!r}; expected one of {', '.join(NETWORKS)}.")
    return dict(_MODULES[net].DEFAULTS)


def check_positive_int(name, value):
    """Raise a ValueError naming `name` unless `value` is an int >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")


def resolve_config(net, net_config=None):
    """The network's full hyper-parameters: its defaults updated by
    `net_config`. Unknown networks or keys raise a ValueError."""
    if net not in _MODULES:
        raise ValueError(f"Unknown net {net!r}; expected one of {', '.join(NETWORKS)}.")
    defaults = _MODULES[net].DEFAULTS
    net_config = dict(net_config or {})
    unknown = sorted(set(net_config) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(
            f"Unknown option(s) {', '.join(unknown)} for net={net!r}; allowed: {allowed}."
        )
    config = {**defaults, **net_config}
    for key, value in config.items():
        check_positive_int(key, value)
    return config


def build(net, data_shape, latent_dim, pixel=False, dtype="float32", net_config=None):
    """(encoder, decoder) for `net` (see the module table)."""
    config = resolve_config(net, net_config)
    module = _MODULES[net]
    data_shape = tuple(data_shape)
    encoder = module.build_encoder(data_shape, latent_dim, dtype, **config)
    decoder = module.build_decoder(data_shape, latent_dim, dtype, pixel, **config)
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
