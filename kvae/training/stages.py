"""The two stages' models of a run: built from a `RunConfig`, compiled with
the originals' optimizer, or loaded from a run's checkpoint."""

import keras

from kvae import data, networks, seeds
from kvae.models import VAE, adam
from kvae.saving import load_keras

JIT_COMPILE = {"auto": "auto", "on": True, "off": False}


def build_stage1(config):
    """The VAE of the data."""
    return VAE(
        data.data_shape(config.dataset, config.image_size, config.dim),
        config.latent_dim,
        net=config.net,
        net_config=config.net_config,
        gamma=config.gamma,
        sigma=config.sigma,
        kl_weight=config.kl_weight,
        min_sigma=config.min_sigma,
        sigma_warmup=config.sigma_warmup,
        precision=config.precision,
        seed=seeds.stage_model_seed(config.seed, 1),
    )


def build_stage2(config):
    """The second stage: a VAE on the stage-1 latents with its own gamma and
    no KL weight (Asperti & Trentin weight only stage 1)."""
    return VAE(
        (config.latent_dim,),
        config.latent_dim,
        net="stage2",
        net_config={"second_dim": config.second_dim, "second_depth": config.second_depth},
        gamma=config.gamma2,
        precision=config.precision,
        seed=seeds.stage_model_seed(config.seed, 2),
    )


BUILDERS = {1: build_stage1, 2: build_stage2}


def parameter_counts(config):
    """Trainable parameters of each network (`python -m kvae.train --dry-run
    --params`)."""
    counts = {}
    for stage, build in BUILDERS.items():
        model = build(config)
        counts[f"stage{stage}"] = {
            "encoder": networks.count_trainable(model.encoder),
            "decoder": networks.count_trainable(model.decoder),
        }
        if model.observation.trainable_weights:  # the learned log gamma
            counts[f"stage{stage}"]["gamma"] = networks.count_trainable(model.observation)
    return counts


def fresh(config, stage):
    """A new model of a stage, its weights drawn from the stage's seed and
    compiled with Adam (TF1's epsilon) and the run's XLA choice; a
    checkpoint keeps both, so a resumed run compiles the same way."""
    keras.utils.set_random_seed(seeds.stage_model_seed(config.seed, stage))
    model = BUILDERS[stage](config)
    model.compile(optimizer=adam(config.schedule(stage).lr), jit_compile=JIT_COMPILE[config.xla])
    return model


def load_checkpoint(path):
    """A run's checkpoint with its optimizer, compiled as it was (but see
    `kvae.training.loop.train_stage`: steps per call and XLA follow the run)."""
    return load_keras(path, compile=True)
