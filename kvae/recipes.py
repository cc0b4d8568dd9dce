"""Training recipes: the originals' configurations, by dataset and gamma.

`resolve(dataset, gamma, overrides)` returns the full configuration of a run:
the recipe's values, then every option the user gave. Sources are
`../shared/reference/original-code.md` (the sections are named per recipe):

| dataset | gamma | source |
|---|---|---|
| celeba | computed | Asperti & Trentin, BalancingVAE committed config (B.4) |
| celeba | learned | Dai & Wipf, README ResNet/CelebA command (A.5) |
| cifar10 | computed | Asperti & Trentin, "suggested configurations" for CIFAR (B.4) |
| cifar10 | learned | Dai & Wipf, CLI defaults with 1000 + 2000 epochs (A.5, issue #9) |
| mnist, fashion_mnist | any | Dai & Wipf CLI defaults (A.8) |
| imagefolder:PATH | any | as celeba, the network sized by --image-size |
| manifold2d, sphere | any | Berger & Sebag 2020, Sec. 4.1 (residual MLP) |

The fixed, mse and pixel observation models use the learned-gamma recipe of
the dataset with only the observation model changed, except the per-pixel
sigma on the 2-D manifold, which adds a sigma warm-up (`PIXEL_RECIPES`).
"""

import copy

from kvae import config as run_config
from kvae import data, networks, observation

GAMMAS = run_config.GAMMAS
STAGE2_GAMMAS = run_config.STAGE2_GAMMAS

BALANCING_KL_WEIGHT = "(2H/latent_dim)^2"
"""Asperti & Trentin's stage-1 KL weight k = (2 H / kappa)^2 for H x H
images (original-code.md B.3): 4 for CelebA 64x64 with 64 latents, 1 for
CIFAR-10 32x32 with 64 latents. Resolved after --latent-dim."""

RECIPES = {
    ("celeba", "computed"): {
        "source": "Asperti & Trentin 2020, BalancingVAE committed configuration "
        "(original-code.md B.4)",
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
    ("celeba", "learned"): {
        "source": "Dai & Wipf 2019, README ResNet/CelebA command (original-code.md A.5)",
        "net": "resnet",
        "net_config": {"base_dim": 32, "num_scale": 4},
        "latent_dim": 128,
        "epochs": 100,
        "lr_epochs": 40,
        "epochs2": 100,
        "lr_epochs2": 40,
    },
    ("cifar10", "computed"): {
        "source": "Asperti & Trentin 2020, suggested CIFAR configuration "
        "(original-code.md B.4; lr_epochs2 400 from its table, not the "
        "dict comment's 1200)",
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
    ("cifar10", "learned"): {
        "source": "Dai & Wipf 2019, command-line defaults with 1000 stage-1 and 2000 "
        "stage-2 epochs (original-code.md A.5, maintainer in issue #9)",
        "epochs": 1000,
        "epochs2": 2000,
    },
    ("mnist", "learned"): {
        "source": "Dai & Wipf 2019, command-line defaults (original-code.md A.8)",
    },
    ("mnist", "computed"): {
        "source": "Dai & Wipf 2019 command-line defaults with the computed gamma "
        "(no published computed-gamma recipe for 28x28 data; KL weight 1)",
    },
    ("manifold2d", "learned"): {
        "source": "Berger & Sebag 2020, Sec. 4.1: residual MLP, 4 blocks of 200 units, "
        "100 fresh points per batch (latent size, learning rate and length "
        "are ours: the paper does not give them)",
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
    },
}
"""Each recipe's differences from the defaults (`kvae.config.RunConfig`,
Dai & Wipf's command-line defaults), and its source."""
RECIPES[("manifold2d", "computed")] = dict(RECIPES[("manifold2d", "learned")])
RECIPES[("emoji", "computed")] = {
    "source": "kvae's, for 2 CPU cores: Asperti & Trentin's CIFAR-10 shape (ResNet, 3 scales, "
    "64 latents, batch 100, KL weight (2H/latent_dim)^2 = 1 at 32x32) at half its width "
    "(base_dim 16), with a short schedule (issue 31)",
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
RECIPES[("emoji", "learned")] = dict(RECIPES[("emoji", "computed")])

PIXEL_RECIPES = {
    "manifold2d": (
        {"sigma_warmup": 2000},
        "; with --gamma pixel, a sigma warm-up of 2,000 steps (kvae's, issue 17: without it "
        "the per-dimension sigma explains one coordinate away and the ELBO is the worst of "
        "the learned sigmas, docs/results.md part 1)",
    ),
}
"""dataset -> (options, note on the source) that the per-pixel sigma's
recipe adds to the learned recipe it is based on. Only where the recipe's
training details are ours already (the 2-D manifold); image recipes keep
the paper's LV-VAE."""

# Datasets that share a recipe.
_SAME_AS = {"fashion_mnist": "mnist", "sphere": "manifold2d", "imagefolder": "celeba"}

NET_OPTIONS = {net: tuple(networks.defaults(net)) for net in networks.STAGE1_NETWORKS}
"""The network options each stage-1 network takes (`net_config`), from the
networks' own DEFAULTS."""

CONFIG_KEYS = run_config.FIELDS
"""Every key of a resolved configuration (config.json)."""


class RecipeError(ValueError):
    """An option that cannot apply (e.g. --base-dim with --net infogan)."""


def recipe_key(dataset):
    """The name a dataset's recipes are stored under."""
    base = data.family(dataset)
    return _SAME_AS.get(base, base)


def base_gamma(gamma):
    """The gamma whose recipe an observation model uses: computed and
    learned have their own; fixed, mse and pixel use the learned one."""
    return gamma if gamma in ("computed", "learned") else "learned"


def recipe(dataset, gamma):
    """The recipe's differences from the defaults (a fresh dict) for a
    dataset and observation model."""
    if gamma not in GAMMAS:
        raise RecipeError(f"Unknown gamma {gamma!r}; expected one of {', '.join(GAMMAS)}.")
    data.check_name(dataset)
    result = copy.deepcopy(RECIPES[(recipe_key(dataset), base_gamma(gamma))])
    if gamma == "pixel" and dataset in PIXEL_RECIPES:
        options, note = PIXEL_RECIPES[dataset]
        result.update(options)
        result["source"] += note
    return result


def resolve(dataset, gamma="computed", overrides=None):
    """The full configuration of a run: the defaults, the recipe's
    differences, then `overrides` (the options the user gave; None values
    are ignored).

    Network options (base_dim, num_scale, fc_dim, ..., width, num_blocks)
    go to `net_config`; giving one that the chosen network does not take is
    a RecipeError. Changing --net drops the recipe's network options. The
    observation options (gamma, sigma, min_sigma) are checked by
    `kvae.observation`, the one place that validates them.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    config = run_config.defaults()
    config.update(recipe(dataset, gamma))
    config.update({"dataset": dataset, "gamma": gamma})
    net = overrides.pop("net", config["net"])
    if net != config["net"]:
        config["net"], config["net_config"] = net, {}
    if net not in NET_OPTIONS:
        raise RecipeError(f"Unknown --net {net!r}; expected one of {', '.join(NET_OPTIONS)}.")
    for key in [key for key in overrides if key in _ALL_NET_OPTIONS]:
        if key not in NET_OPTIONS[net]:
            raise RecipeError(f"--{key.replace('_', '-')} does not apply to --net {net}.")
        config["net_config"][key] = overrides.pop(key)
    unknown = sorted(set(overrides) - set(CONFIG_KEYS))
    if unknown:
        raise RecipeError(f"Unknown configuration key(s): {', '.join(unknown)}.")
    config.update(overrides)
    config["net_config"] = networks.resolve_config(net, config["net_config"])
    if config["gamma2"] is None:
        config["gamma2"] = "computed" if config["gamma"] == "computed" else "learned"
    if config["kl_weight"] == BALANCING_KL_WEIGHT:
        side = data.data_shape(dataset, config["image_size"], config["dim"])[0]
        config["kl_weight"] = (2.0 * side / config["latent_dim"]) ** 2
    if config["sigma_schedule"] is not None:
        if config["gamma"] != "fixed":
            raise RecipeError("--sigma-schedule applies only to --gamma fixed.")
        if config["sigma"] is None:
            config["sigma"] = config["sigma_schedule"][0]
    try:
        observation.resolve_gamma(config["gamma"], config["sigma"])
        observation.check_min_sigma(config["min_sigma"], config["gamma"])
        observation.check_sigma_warmup(config["sigma_warmup"], config["gamma"])
    except ValueError as error:
        raise RecipeError(str(error)) from error
    if config["gamma2"] not in STAGE2_GAMMAS:
        raise RecipeError(f"--gamma2 must be one of {', '.join(STAGE2_GAMMAS)}.")
    return {key: config[key] for key in CONFIG_KEYS}


_ALL_NET_OPTIONS = {option for options in NET_OPTIONS.values() for option in options}


WHY_NOT_TRAINED = (
    "not trained here: the 2-core CPU machine that builds the zoo has no GPU, and no GPU was "
    "lent for it; CelebA and CIFAR-10 cannot be downloaded on it either"
)
"""Why the CelebA and CIFAR-10 recipes are recipes, not zoo models."""

PUBLISHED = {
    ("celeba", "computed"): {
        "name": "celeba_two_stage_computed",
        "description": (
            "CelebA 64x64, two stages, computed gamma (Asperti & Trentin's ResNet, 64 latents)"
        ),
        "expected_source": "Asperti & Trentin 2020, Table 4",
        "expected_gpu_time": (
            "training steps only, from issue 18's measurement of kvae's fit on one NVIDIA "
            "H200 GPU (JAX, Keras 3.15.1, synthetic data in memory; not yet remeasured with "
            "benchmarks/train_throughput.py): stage 1, 113,890 steps of batch 100, about 16 min "
            "with --precision auto (mixed_bfloat16, 11,750 images/s at 16 steps per call) or "
            "26 min in float32 (7,350 images/s); stage 2, 227,780 steps, about 5 min in "
            "bfloat16 or 8 min in float32 (1.25 and 2.1 ms a step, one step per call, single "
            "rounds); the epoch ends add about 2 to 5 %, estimated in docs/performance.md"
        ),
        "expected": {
            "fid_rec": "33.9 ± 0.8",
            "fid_gen1": "43.6 ± 1.3",
            "fid_gen2": "42.7 ± 1.0",
            "fid_gen2_latent_normalisation": "38.6 ± 1.0",
        },
    },
    ("celeba", "learned"): {
        "name": "celeba_two_stage_learned",
        "description": "CelebA 64x64, two stages, learned gamma (Dai & Wipf's ResNet, 128 latents)",
        "expected_source": (
            "Dai & Wipf 2019, as quoted in Asperti & Trentin 2020, Table 4 (120 epochs)"
        ),
        "expected_gpu_time": (
            "not measured for this recipe; issue 18's measurement on one NVIDIA H200 GPU of "
            "the same ResNet with 64 latents (this recipe has 128) and computed gamma at "
            "batch 64 (JAX, synthetic data, training steps only) puts stage 1's 254,300 steps "
            "at about 27 min with --precision auto (10,170 images/s) or 43 min in float32 "
            "(6,380 images/s); stage 2's 254,300 steps of its 1024-wide MLP were not measured"
        ),
        "expected": {"fid_gen1": "60.5 ± 0.6", "fid_gen2": "44.4 ± 0.7"},
    },
    ("cifar10", "computed"): {
        "name": "cifar10_two_stage_computed",
        "description": (
            "CIFAR-10, two stages, computed gamma (Asperti & Trentin's ResNet, 64 latents)"
        ),
        "expected_source": "Asperti & Trentin 2020, Tables 1 and 2 (700 epochs)",
        "expected_gpu_time": (
            "not measured here (no GPU was lent); the run is 350,000 stage-1 steps of "
            "batch 100 plus 700,000 stage-2 steps, so a per-step time on your GPU gives "
            "the total"
        ),
        "expected": {
            "fid_rec": "53.8 ± 0.9",
            "fid_gen1": "80.2 ± 1.3",
            "fid_gen2": "69.8 ± 1.1",
            "mse": ".0041 ± .0001",
            "variance_law": ".957 ± .005",
        },
    },
    ("cifar10", "learned"): {
        "name": "cifar10_two_stage_learned",
        "description": (
            "CIFAR-10, two stages, learned gamma (Dai & Wipf's InfoGAN-like net, 64 latents)"
        ),
        "expected_source": (
            "Dai & Wipf 2019 as quoted in Asperti & Trentin 2020, Table 2; REC from their"
            " replication"
        ),
        "expected_gpu_time": (
            "not measured here (no GPU was lent); the run is 781,000 stage-1 steps of "
            "batch 64 plus 1,562,000 stage-2 steps, so a per-step time on your GPU gives "
            "the total"
        ),
        "expected": {
            "fid_gen1": "76.7 ± 0.8",
            "fid_gen2": "72.9 ± 0.9",
            "fid_rec_replicated": "54.1 ± 0.9",
        },
        "fid_protocols": {"fid_rec_replicated": "asperti2020"},
    },
}
"""What a zoo recipe card says besides its configuration: its name, the
paper's numbers and where they come from, and the time on a GPU. The FID
numbers were measured under the protocol of the recipe's paper
(`fid_protocol`) unless `fid_protocols` names another for a number."""


FID_PROTOCOLS = {("celeba", "computed"): "asperti2020", ("cifar10", "computed"): "asperti2020"}
"""The FID protocol (`kvae.inception.PROTOCOLS`) of the paper a recipe
comes from; every other recipe follows Dai & Wipf's (dai2019), whose
paper reports FIDs for MNIST, Fashion-MNIST, CIFAR-10 and CelebA."""


def fid_protocol(config):
    """The FID protocol of the recipe a run configuration came from (its
    dataset and gamma); "dai2019" when it names none."""
    dataset, gamma = config.get("dataset"), config.get("gamma")
    if not dataset or not gamma:
        return "dai2019"
    try:
        key = recipe_key(dataset)
    except (AttributeError, TypeError):
        return "dai2019"
    return FID_PROTOCOLS.get((key, base_gamma(gamma)), "dai2019")


def zoo_cards():
    """The zoo's recipe entries ({name: card}), built from `PUBLISHED` and
    `resolve`: the command, the epochs and batch size of the recipe."""
    cards = {}
    for (dataset, gamma), published in PUBLISHED.items():
        config = resolve(dataset, gamma)
        cards[published["name"]] = {
            "trained": False,
            "name": published["name"],
            "dataset": dataset,
            "description": published["description"],
            "command": f"python -m kvae.train {dataset} --gamma {gamma}",
            "why_not_trained": WHY_NOT_TRAINED,
            "epochs": {"stage1": config["epochs"], "stage2": config["epochs2"]},
            "batch_size": config["batch_size"],
            "expected_gpu_time": published["expected_gpu_time"],
            "expected": dict(published["expected"]),
            "expected_fid_protocol": {
                key: published.get("fid_protocols", {}).get(key, fid_protocol(config))
                for key in published["expected"]
                if key.startswith("fid")
            },
            "expected_source": published["expected_source"],
        }
    return cards
