"""Training recipes: one table (`RECIPES`), keyed by a readable name.

Each recipe holds the datasets and the gamma it is for, what it changes from
the defaults (`overrides`, flat `kvae.config` keys), where it comes from
(`source`, naming the sections of `../shared/reference/original-code.md`),
the command that trains it, and, for the papers' recipes, the paper's
numbers with the FID protocol they were measured under and the time
measured for it. `resolve(dataset, gamma, overrides)` returns the
`RunConfig` of a run: the defaults, the recipe's overrides, then the user's.

The fixed, mse and pixel observation models use the dataset's learned-gamma
recipe with only the observation model changed, unless a recipe names that
gamma itself (the 2-D manifold's per-pixel sigma, with a sigma warm-up).

Plain Python: no Keras here (`python -m kvae.train --dry-run` imports none).
"""

import copy

from kvae import data, networks
from kvae.config import FIELDS, RunConfig, defaults
from kvae.errors import ConfigError
from kvae.options import (
    GAMMAS,
    STAGE2_GAMMAS,
    check_min_sigma,
    check_sigma_warmup,
    resolve_gamma,
)

BALANCING_KL_WEIGHT = "(2H/latent_dim)^2"
"""Asperti & Trentin's stage-1 KL weight k = (2 H / kappa)^2 for H x H
images (original-code.md B.3): 4 for CelebA 64x64 with 64 latents, 1 for
CIFAR-10 32x32 with 64 latents. Resolved after latent_dim."""

WHY_NOT_TRAINED = (
    "not trained here: the 2-core CPU machine that builds the zoo has no GPU, and no GPU was "
    "lent for it; CelebA and CIFAR-10 cannot be downloaded on it either"
)
"""Why the CelebA and CIFAR-10 recipes are recipes, not zoo models."""

_MANIFOLD2D = {
    "net": "mlp",
    "net_config": {"width": 200, "num_blocks": 4},
    "latent_dim": 2,
    "batch_size": 100,
    "epochs": 100,
    "steps_per_epoch": 100,
    "lr": 1e-3,
    "lr_epochs": 0,
    "epochs2": 50,
    "lr2": 1e-3,
    "lr_epochs2": 0,
    "second_dim": 256,
}
_MANIFOLD2D_SOURCE = (
    "Berger & Sebag 2020, Sec. 4.1: residual MLP, 4 blocks of 200 units, 100 fresh points "
    "per batch (latent size, learning rate and length are ours: the paper does not give them)"
)
_EMOJI = {
    "image_size": 32,
    "net": "resnet",
    "net_config": {"base_dim": 16, "num_scale": 3},
    "batch_size": 100,
    "kl_weight": BALANCING_KL_WEIGHT,
    "epochs": 40,
    "lr": 5e-4,
    "lr_epochs": 15,
    "epochs2": 80,
    "lr2": 1e-3,
    "lr_epochs2": 25,
    "xla": "on",
}
_EMOJI_SOURCE = (
    "kvae's, for 2 CPU cores: Asperti & Trentin's CIFAR-10 shape (ResNet, 3 scales, 64 "
    "latents, batch 100, KL weight (2H/latent_dim)^2 = 1 at 32x32) at half its width "
    "(base_dim 16), with a short schedule (issue 31)"
)
_NO_GPU = (
    "not measured here (no GPU was lent); the run is {steps} so a per-step time on your GPU "
    "gives the total"
)

RECIPES = {
    "celeba_two_stage_computed": {
        "datasets": ("celeba", "imagefolder"),
        "gamma": "computed",
        "description": "CelebA 64x64, two stages, computed gamma (Asperti & Trentin's ResNet, "
        "64 latents)",
        "source": "Asperti & Trentin 2020, BalancingVAE committed configuration "
        "(original-code.md B.4)",
        "overrides": {
            "net": "resnet",
            "net_config": {"base_dim": 32, "num_scale": 4},
            "batch_size": 100,
            "kl_weight": BALANCING_KL_WEIGHT,
            "epochs": 70,
            "lr": 5e-5,
            "lr_epochs": 60,
            "epochs2": 140,
            "lr2": 5e-5,
            "lr_epochs2": 120,
            "second_dim": 4096,
        },
        "paper": {
            "source": "Asperti & Trentin 2020, Table 4",
            "fid_protocol": "asperti2020",
            "numbers": {
                "fid_rec": "33.9 ± 0.8",
                "fid_gen1": "43.6 ± 1.3",
                "fid_gen2": "42.7 ± 1.0",
                "fid_gen2_latent_normalisation": "38.6 ± 1.0",
            },
        },
        "time": "training steps only, from issue 18's measurement of kvae's fit on one NVIDIA "
        "H200 GPU (JAX, Keras 3.15.1, synthetic data in memory; not yet remeasured with "
        "benchmarks/train_throughput.py): stage 1, 113,890 steps of batch 100, about 16 min "
        "with --precision auto (mixed_bfloat16, 11,750 images/s at 16 steps per call) or "
        "26 min in float32 (7,350 images/s); stage 2, 227,780 steps, about 5 min in "
        "bfloat16 or 8 min in float32 (1.25 and 2.1 ms a step, one step per call, single "
        "rounds); the epoch ends add about 2 to 5 %, estimated in docs/performance.md",
    },
    "celeba_two_stage_learned": {
        "datasets": ("celeba", "imagefolder"),
        "gamma": "learned",
        "description": "CelebA 64x64, two stages, learned gamma (Dai & Wipf's ResNet, 128 latents)",
        "source": "Dai & Wipf 2019, README ResNet/CelebA command (original-code.md A.5)",
        "overrides": {
            "net": "resnet",
            "net_config": {"base_dim": 32, "num_scale": 4},
            "latent_dim": 128,
            "epochs": 100,
            "lr_epochs": 40,
            "epochs2": 100,
            "lr_epochs2": 40,
        },
        "paper": {
            "source": "Dai & Wipf 2019, as quoted in Asperti & Trentin 2020, Table 4 (120 epochs)",
            "fid_protocol": "dai2019",
            "numbers": {"fid_gen1": "60.5 ± 0.6", "fid_gen2": "44.4 ± 0.7"},
        },
        "time": "not measured for this recipe; issue 18's measurement on one NVIDIA H200 GPU "
        "of the same ResNet with 64 latents (this recipe has 128) and computed gamma at batch "
        "64 (JAX, synthetic data, training steps only) puts stage 1's 254,300 steps at about "
        "27 min with --precision auto (10,170 images/s) or 43 min in float32 (6,380 "
        "images/s); stage 2's 254,300 steps of its 1024-wide MLP were not measured",
    },
    "cifar10_two_stage_computed": {
        "datasets": ("cifar10",),
        "gamma": "computed",
        "description": "CIFAR-10, two stages, computed gamma (Asperti & Trentin's ResNet, "
        "64 latents)",
        "source": "Asperti & Trentin 2020, suggested CIFAR configuration (original-code.md "
        "B.4; lr_epochs2 400 from its table, not the dict comment's 1200)",
        "overrides": {
            "net": "resnet",
            "net_config": {"base_dim": 32, "num_scale": 3},
            "batch_size": 100,
            "kl_weight": BALANCING_KL_WEIGHT,
            "epochs": 700,
            "lr_epochs": 250,
            "epochs2": 1400,
            "lr_epochs2": 400,
            "second_dim": 2048,
        },
        "paper": {
            "source": "Asperti & Trentin 2020, Tables 1 and 2 (700 epochs)",
            "fid_protocol": "asperti2020",
            "numbers": {
                "fid_rec": "53.8 ± 0.9",
                "fid_gen1": "80.2 ± 1.3",
                "fid_gen2": "69.8 ± 1.1",
                "mse": ".0041 ± .0001",
                "variance_law": ".957 ± .005",
            },
        },
        "time": _NO_GPU.format(
            steps="350,000 stage-1 steps of batch 100 plus 700,000 stage-2 steps,"
        ),
    },
    "cifar10_two_stage_learned": {
        "datasets": ("cifar10",),
        "gamma": "learned",
        "description": "CIFAR-10, two stages, learned gamma (Dai & Wipf's InfoGAN-like net, "
        "64 latents)",
        "source": "Dai & Wipf 2019, command-line defaults with 1000 stage-1 and 2000 stage-2 "
        "epochs (original-code.md A.5, maintainer in issue #9)",
        "overrides": {"epochs": 1000, "epochs2": 2000},
        "paper": {
            "source": "Dai & Wipf 2019 as quoted in Asperti & Trentin 2020, Table 2; REC from "
            "their replication",
            "fid_protocol": "dai2019",
            "fid_protocols": {"fid_rec_replicated": "asperti2020"},
            "numbers": {
                "fid_gen1": "76.7 ± 0.8",
                "fid_gen2": "72.9 ± 0.9",
                "fid_rec_replicated": "54.1 ± 0.9",
            },
        },
        "time": _NO_GPU.format(
            steps="781,000 stage-1 steps of batch 64 plus 1,562,000 stage-2 steps,"
        ),
    },
    "mnist_learned": {
        "datasets": ("mnist", "fashion_mnist"),
        "gamma": "learned",
        "source": "Dai & Wipf 2019, command-line defaults (original-code.md A.8)",
        "overrides": {},
    },
    "mnist_computed": {
        "datasets": ("mnist", "fashion_mnist"),
        "gamma": "computed",
        "source": "Dai & Wipf 2019 command-line defaults with the computed gamma (no published "
        "computed-gamma recipe for 28x28 data; KL weight 1)",
        "overrides": {},
    },
    "manifold2d_learned": {
        "datasets": ("manifold2d", "sphere"),
        "gamma": "learned",
        "source": _MANIFOLD2D_SOURCE,
        "overrides": _MANIFOLD2D,
    },
    "manifold2d_computed": {
        "datasets": ("manifold2d", "sphere"),
        "gamma": "computed",
        "source": _MANIFOLD2D_SOURCE,
        "overrides": _MANIFOLD2D,
    },
    "manifold2d_pixel": {
        "datasets": ("manifold2d",),
        "gamma": "pixel",
        "source": _MANIFOLD2D_SOURCE + "; with gamma pixel, a sigma warm-up of 2,000 steps "
        "(kvae's, issue 17: without it the per-dimension sigma explains one coordinate away "
        "and the ELBO is the worst of the learned sigmas, docs/results.md part 1)",
        "overrides": {**_MANIFOLD2D, "sigma_warmup": 2000},
    },
    "emoji_two_stage_computed": {
        "datasets": ("emoji",),
        "gamma": "computed",
        "source": _EMOJI_SOURCE,
        "overrides": _EMOJI,
        "time": "86 min for both stages (`python -m kvae.train emoji --gamma computed --seed 0`, "
        "TensorFlow, 2 cores of an AMD EPYC (Zen 4), 2026-12-03; the zoo model "
        "emoji_two_stage_computed, docs/emoji.md)",
    },
    "emoji_two_stage_learned": {
        "datasets": ("emoji",),
        "gamma": "learned",
        "source": _EMOJI_SOURCE,
        "overrides": _EMOJI,
        "time": "not completed: stopped after 19 of 40 stage-1 epochs (about 160 s per epoch "
        "alone on 2 cores of an AMD EPYC (Zen 4), 2026-12-03); docs/emoji.md compares it with "
        "the computed recipe at the same epoch",
    },
}
"""Every recipe: datasets and gamma, overrides of the defaults, source; the
papers' recipes also their description, published numbers and time."""


def base_gamma(gamma):
    """The gamma whose recipe an observation model uses when no recipe names
    it: computed and learned have their own; fixed, mse and pixel use the
    learned one."""
    return gamma if gamma in ("computed", "learned") else "learned"


def find(dataset, gamma):
    """(name, recipe) for a dataset and observation model: the recipe of the
    dataset's family for that gamma, else for its `base_gamma`."""
    if gamma not in GAMMAS:
        raise ConfigError(
            f"unknown gamma {gamma!r}; expected one of {', '.join(GAMMAS)}", argument="gamma"
        )
    family = data.family(data.check_name(dataset))
    for wanted in (gamma, base_gamma(gamma)):
        for name, recipe in RECIPES.items():
            if family in recipe["datasets"] and recipe["gamma"] == wanted:
                return name, recipe
    raise ConfigError(f"no recipe for {dataset} with gamma {gamma!r}", argument="gamma")


def resolve(dataset, gamma="computed", overrides=None):
    """The `RunConfig` of a run: the defaults, the recipe's overrides, then
    `overrides` (the options the user gave, flat keys; None values are
    ignored).

    Network options (base_dim, num_scale, fc_dim, ..., width, num_blocks)
    go to `net_config`; one that the chosen network does not take is a
    ConfigError. Changing `net` drops the recipe's network options. The
    observation options (gamma, sigma, min_sigma, sigma_warmup) are checked
    by `kvae.options`."""
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    _, recipe = find(dataset, gamma)
    config = {**defaults(), **copy.deepcopy(recipe["overrides"]), "source": recipe["source"]}
    config.update({"dataset": dataset, "gamma": gamma})
    net = overrides.pop("net", config["net"])
    if net != config["net"]:
        config["net"], config["net_config"] = net, {}
    if net not in networks.STAGE1_NETWORKS:
        raise ConfigError(
            f"unknown net {net!r}; expected one of {', '.join(networks.STAGE1_NETWORKS)}",
            argument="net",
        )
    options = networks.defaults(net)
    for key in [key for key in overrides if key in _ALL_NET_OPTIONS]:
        if key not in options:
            raise ConfigError(f"{key} does not apply to net {net!r}", argument=key)
        config["net_config"][key] = overrides.pop(key)
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}", unknown[0])
    config.update(overrides)
    return RunConfig.from_json(_derived(config, net))


def _derived(config, net):
    """The values that follow from others, and the checks across options."""
    try:
        config["net_config"] = networks.resolve_config(net, config["net_config"])
    except ValueError as error:
        raise ConfigError(str(error), argument="net") from error
    if config["gamma2"] is None:
        config["gamma2"] = "computed" if config["gamma"] == "computed" else "learned"
    if config["kl_weight"] == BALANCING_KL_WEIGHT:
        side = data.data_shape(config["dataset"], config["image_size"], config["dim"])[0]
        config["kl_weight"] = (2.0 * side / config["latent_dim"]) ** 2
    if config["sigma_schedule"] is not None:
        if config["gamma"] != "fixed":
            raise ConfigError("sigma_schedule applies only to gamma 'fixed'", "sigma_schedule")
        if config["sigma"] is None:
            config["sigma"] = config["sigma_schedule"][0]
    for argument, check in (
        ("sigma", lambda: resolve_gamma(config["gamma"], config["sigma"])),
        ("min_sigma", lambda: check_min_sigma(config["min_sigma"], config["gamma"])),
        ("sigma_warmup", lambda: check_sigma_warmup(config["sigma_warmup"], config["gamma"])),
    ):
        try:
            check()
        except ValueError as error:
            raise ConfigError(str(error), argument=argument) from error
    if config["gamma2"] not in STAGE2_GAMMAS:
        raise ConfigError(f"gamma2 must be one of {', '.join(STAGE2_GAMMAS)}", "gamma2")
    return config


_ALL_NET_OPTIONS = {key for net in networks.STAGE1_NETWORKS for key in networks.defaults(net)}


def fid_protocol(config):
    """The FID protocol of the paper a run configuration's recipe comes
    from (its dataset and gamma): "asperti2020" or "dai2019", the default
    when the recipe names none (Dai & Wipf report FIDs for MNIST,
    Fashion-MNIST, CIFAR-10 and CelebA)."""
    try:
        _, recipe = find(config.dataset, config.gamma)
    except (ConfigError, data.DataError, AttributeError, TypeError):
        return "dai2019"
    return recipe.get("paper", {}).get("fid_protocol", "dai2019")


def zoo_cards():
    """The zoo's recipe entries ({name: card}): every recipe with the
    paper's numbers, its command, epochs and batch size."""
    cards = {}
    for name, recipe in RECIPES.items():
        if "paper" not in recipe:
            continue
        dataset, gamma = recipe["datasets"][0], recipe["gamma"]
        config = resolve(dataset, gamma)
        paper = recipe["paper"]
        cards[name] = {
            "trained": False,
            "name": name,
            "dataset": dataset,
            "description": recipe["description"],
            "command": f"python -m kvae.train {dataset} --gamma {gamma}",
            "why_not_trained": WHY_NOT_TRAINED,
            "epochs": {"stage1": config.stage1.epochs, "stage2": config.stage2.epochs},
            "batch_size": config.batch_size,
            "expected_gpu_time": recipe["time"],
            "expected": dict(paper["numbers"]),
            "expected_fid_protocol": {
                key: paper.get("fid_protocols", {}).get(key, paper["fid_protocol"])
                for key in paper["numbers"]
                if key.startswith("fid")
            },
            "expected_source": paper["source"],
        }
    return cards
