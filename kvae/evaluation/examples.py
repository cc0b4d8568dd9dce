"""The real examples an evaluation compares a model with."""

from kvae import data
from kvae.errors import EvaluationError


def load_examples(config, split, count, shape):
    """The first `count` examples of a split of the run's dataset
    (`config`, a `kvae.config.RunConfig`), checked against the model's data
    `shape`: uint8 images in the dataset's order, or float points."""
    examples = data.load_split(
        config.dataset,
        split,
        config.data_dir,
        image_size=shape[0] if len(shape) == 3 else config.image_size,
        dim=shape[0] if len(shape) == 1 else config.dim,
        radius=config.radius,
        seed=config.seed,
        count=count,
    )
    if tuple(examples.shape[1:]) != tuple(shape):
        raise EvaluationError(
            f"{config.dataset} examples have shape {examples.shape[1:]}, the model takes "
            f"{tuple(shape)}",
            argument="dataset",
        )
    return examples[:count]
