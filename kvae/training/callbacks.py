"""The Keras callbacks of a training stage: the end of an epoch (checkpoint,
best checkpoint, picture, metrics row, commit), validation that leaves the
training noise alone, and naming the epoch whose batches fit reads next."""

import copy
import math
import time

import keras

from kvae import metrics
from kvae.errors import NonFiniteLoss
from kvae.runs import epochs_done, same_file

LATENT_SUMMARY_EXAMPLES = 5000


def latent_summary(model, examples):
    """The variance law (mean over latents) and the number of inactive
    latents of `model` on `examples` (kvae.metrics)."""
    mu, log_sigma = metrics.encode(model, examples)
    law = metrics.variance_law(mu, log_sigma)
    return {
        "variance_law": round(float(law["law"].mean()), 6),
        "inactive": int(metrics.inactive_latents(law["mean_sigma2"]).sum()),
    }


class EpochEnd(keras.callbacks.Callback):
    """Per step: stop on a non-finite loss. Per epoch: checkpoint, best
    checkpoint, sample picture, metrics row, commit (the checkpoint's file,
    its link and the commit through `writer`, a `CheckpointWriter`).

    Args:
        run: the `kvae.runs.RunFolder`.
        state: the run's state (`epochs_done`, best validation loss per stage).
        stage: 1 or 2.
        pictures: a callable (model, path) drawing the epoch's picture.
        summary_examples: examples for `latent_summary`.
        writer: the stage's `CheckpointWriter`.
        keep_best: "full", "weights" (without the optimizer) or "none".
    """

    def __init__(self, run, state, stage, pictures, summary_examples, writer, keep_best="full"):
        super().__init__()
        self.run, self.state, self.stage, self.pictures = run, state, stage, pictures
        self.summary_examples = summary_examples
        self.writer = writer
        self.keep_best = keep_best
        self.failure = None
        self.started = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        # Called after each call of the compiled step: `batch` is the call's
        # last step (past the epoch's end in a short last call).
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss) and self.failure is None:
            self.failure = (min(batch + 1, self.params.get("steps") or batch + 1), loss)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure is not None:
            return
        logs = {key: float(value) for key, value in (logs or {}).items()}
        if not all(
            math.isfinite(value) for key, value in logs.items() if key in ("loss", "val_loss")
        ):
            self.failure = ("the end of the epoch", logs.get("val_loss"))
            self.model.stop_training = True
            return
        renames = self._write_checkpoints(epoch + 1, logs)
        # After the copy the writer took: a forward pass moves the
        # power-iteration vectors of spectrally normalized layers (Dai &
        # Wipf's networks), so the row describes the checkpoint's values.
        summary = latent_summary(self.model, self.summary_examples)
        self.pictures(
            self.model, self.run.file(f"samples/stage{self.stage}_epoch{epoch + 1:04d}.png")
        )
        self.run.append_metrics(
            {
                **logs,
                **summary,
                "epoch": epoch + 1,
                "stage": self.stage,
                "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "seconds": round(time.time() - self.started, 3),
            }
        )
        self.state[f"stage{self.stage}"]["epochs_done"] = epoch + 1
        committed = copy.deepcopy(self.state)
        self.writer.then(lambda: self.run.commit(committed, renames))

    def _write_checkpoints(self, number, logs):
        """Hand the epoch's checkpoint (and best checkpoint) to the writer,
        which writes them beside the committed ones while the next epoch
        trains; returns the renames that commit them."""
        stage_state = self.state[f"stage{self.stage}"]
        latest = self.run.checkpoint(self.stage)
        latest_next = latest.with_suffix(".next.keras")
        self.writer.write(latest_next)
        renames = [(latest_next, latest)]
        best = stage_state["best_val_loss"]
        improved = "val_loss" in logs and (best is None or logs["val_loss"] < best)
        if self.keep_best != "none" and improved:
            best_file = self.run.checkpoint(self.stage, best=True)
            best_next = best_file.with_suffix(".next.keras")
            if self.keep_best == "full":  # the same bytes: a hard link
                self.writer.then(lambda: same_file(latest_next, best_next))
            else:
                self.writer.write(best_next, optimizer=False, wait=False)
            renames.append((best_next, best_file))
            stage_state["best_val_loss"] = logs["val_loss"]
            stage_state["best_epoch"] = number
        return renames

    def failure_error(self, run):
        """The NonFiniteLoss of a stopped stage."""
        where, value = self.failure
        at = f"by step {where}" if isinstance(where, int) else where
        done = epochs_done(self.state, self.stage)
        argument = "lr" if self.stage == 1 else "lr2"
        return NonFiniteLoss(
            f"non-finite loss ({value}) in stage {self.stage}, epoch {done + 1}, {at}; the last "
            f"good checkpoint is {run.checkpoint(self.stage)} (epoch {done}). Try a lower "
            f"learning rate ({argument}).",
            argument=argument,
        )


class ValidationKeepsTheNoise(keras.callbacks.Callback):
    """Validation draws its z from the model's seed generator, as training
    does; put the generator's state back after each validation pass, so the
    training noise does not depend on when, or whether, validation ran
    (`validate_every`)."""

    def on_test_begin(self, logs=None):
        self.state = keras.ops.convert_to_numpy(self.model.seed_generator.state)

    def on_test_end(self, logs=None):
        self.model.seed_generator.state.assign(self.state)


class EpochClock(keras.callbacks.Callback):
    """Names the epoch fit is about to run (`clock["epoch"]`), before Keras
    opens that epoch's iterator: epoch e reads batches e * steps, ... of
    the stage's stream (`kvae.data.Dataset.train_batches`)."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_epoch_begin(self, epoch, logs=None):
        self.clock["epoch"] = epoch


class SigmaSchedule(keras.callbacks.Callback):
    """A fixed gamma that moves each epoch (`sigma_schedule`): epochs past the
    schedule's end keep its last value."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        self.model.observation.set_sigma(self.schedule[min(epoch, len(self.schedule) - 1)])
