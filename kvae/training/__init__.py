"""Training as a library: `train(config, out)` runs a (two-stage) VAE from a
resolved `RunConfig` (`kvae.recipes.resolve`) into a run folder
(`kvae.runs`); `resume(out)` continues one. `python -m kvae.train` is the
command-line wrapper.

    from kvae import recipes, training
    config = recipes.resolve("fashion_mnist", "computed", {"epochs": 3, "epochs2": 3})
    training.train(config, "runs/fmnist")
    training.resume("runs/fmnist", {"epochs": 5})   # two more stage-1 epochs

Stage 1 trains first; stage 2 then trains on z = mu + sigma * eps of the
stage-1 posteriors of the training set, fresh eps every batch, with stage 1
frozen. Every epoch is committed atomically (checkpoint, best checkpoint,
picture, metrics row).

- `loop`: the stages, `fit`, `train` and `resume`;
- `stages`: the two stages' models (built, compiled, loaded);
- `callbacks`: the end of an epoch, validation that keeps the noise, the
  epoch clock, the sigma schedule;
- `checkpoints`: the checkpoint writer (a worker thread);
- `pictures`: the picture of every epoch.
"""

from kvae.errors import NonFiniteLoss
from kvae.training.loop import resume, train
from kvae.training.stages import parameter_counts

__all__ = ["NonFiniteLoss", "parameter_counts", "resume", "train"]
