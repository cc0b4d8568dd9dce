"""kvae's `.keras` checkpoints: reading one (`load_keras`), converting a
model to float32, and writing them while training goes on
(`CheckpointWriter`)."""

import concurrent.futures
import os

import keras

from kvae import models  # noqa: F401 (registers kvae's classes for load_model)


def load_keras(path, compile=True, safe_mode=True):
    """A `.keras` file written by kvae (a `VAE`): `keras.saving.load_model`
    with kvae's classes registered (this module imports them). With
    `compile=True` the optimizer state (iterations, Adam moments, loss scale)
    comes back so training resumes; use `compile=False` for inference.
    `kvae.load` is the public entry point (files, presets, zoo names, Hub
    handles)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No kvae checkpoint at {path!r}.")
    return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)


def to_float32(model):
    """The same VAE computing in float32 (for CPU inference): a model built
    with precision "float32" from the config, holding the same weights
    (variables are float32 under every policy). A float32 model is
    returned as it is."""
    if model.precision == "float32":
        return model
    config = {**model.get_config(), "precision": "float32"}
    converted = type(model).from_config(config)
    converted.set_weights(model.get_weights())
    return converted


def _saved_state(model):
    """Every variable a `.keras` file of a compiled `model` holds, in a
    fixed order: the model's (with its seed generator), its optimizer's and
    its metrics'."""
    variables = [*model.variables, *model.optimizer.variables, *model.metrics_variables]
    return list({id(variable): variable for variable in variables}.values())


class CheckpointWriter:
    """Writes `.keras` checkpoints of one compiled model from a worker
    thread, so that training goes on while the file is written.

    `write(path)` copies the values of the model's, its optimizer's and its
    metrics' variables to host memory (all the caller waits for) and
    returns. The worker puts the copies into a second model of the same
    configuration, built at the first write, and saves that one to `path`
    (on a GPU the copy takes device memory the size of the file). The live
    model cannot be saved from the thread: training changes it in place
    (TensorFlow) or frees its variables during an epoch (Keras's JAX
    trainer), and a `StatelessScope` over copied values fails, because
    Keras 3.15 creates variables inside every save (docs/performance.md,
    "The latest checkpoint").

    `then(function)` runs `function()` in the worker after everything handed
    over before it, unless that failed. `write` first waits for all earlier
    work, so one epoch's files are in flight at a time; `wait` waits too,
    and both raise the first error of that work. `close` waits and stops the
    worker.
    """

    def __init__(self, model):
        self.model = model
        self._copy = None
        self._pending = []
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="kvae-checkpoint"
        )

    def write(self, path):
        self.wait()
        # A copy on both backends (np.array of the value), so training may
        # change or free the variables once this returns.
        values = [keras.ops.convert_to_numpy(variable) for variable in _saved_state(self.model)]
        self.then(lambda: self._save(values, os.fspath(path)))

    def then(self, function):
        before = list(self._pending)

        def after():
            for future in before:  # done: the one worker runs them in order
                future.result()
            function()

        self._pending.append(self._executor.submit(after))

    def wait(self):
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self):
        try:
            self.wait()
        finally:
            self._executor.shutdown()

    def _save(self, values, path):
        # On the default device: under several JAX processes "cpu:0" names
        # process 0's CPU, whose arrays the other processes cannot read.
        if self._copy is None:
            self._copy = self._build_copy()
        for variable, value in zip(_saved_state(self._copy), values):
            variable.assign(value)
        self._copy.save(path)

    def _build_copy(self):
        copy = type(self.model).from_config(self.model.get_config())
        copy.compile_from_config(self.model.get_compile_config())
        ours, theirs = _saved_state(copy), _saved_state(self.model)
        if [(v.shape, v.dtype) for v in ours] != [(v.shape, v.dtype) for v in theirs]:
            raise RuntimeError(
                "the checkpoint writer's copy of the model holds other variables than the "
                f"model ({len(ours)} against {len(theirs)})"
            )
        return copy
