"""The checkpoints of a training run, written by a worker thread while the
next epoch trains (`CheckpointWriter`)."""

import concurrent.futures
import os

import keras


def _saved_state(model, optimizer=True):
    """Every variable a `.keras` file of a compiled `model` holds, in a
    fixed order: the model's (with its seed generator) and, with
    `optimizer`, its optimizer's and its metrics'."""
    variables = list(model.variables)
    if optimizer:
        variables += [*model.optimizer.variables, *model.metrics_variables]
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
        self._copies = {}
        self._pending = []
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="kvae-checkpoint"
        )

    def write(self, path, optimizer=True, wait=True):
        """Copy the values to host memory and hand the save to the worker;
        with `optimizer=False` the file holds the model alone (no optimizer
        or metrics state: it loads for inference, not to resume). `wait`:
        first wait for the work handed over before (False for a second file
        of the same epoch)."""
        if wait:
            self.wait()
        # A copy on both backends (np.array of the value), so training may
        # change or free the variables once this returns.
        state = _saved_state(self.model, optimizer)
        values = [keras.ops.convert_to_numpy(variable) for variable in state]
        self.then(lambda: self._save(values, os.fspath(path), optimizer))

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

    def _save(self, values, path, optimizer):
        # On the default device: under several JAX processes "cpu:0" names
        # process 0's CPU, whose arrays the other processes cannot read.
        if optimizer not in self._copies:
            self._copies[optimizer] = self._build_copy(optimizer)
        copy = self._copies[optimizer]
        for variable, value in zip(_saved_state(copy, optimizer), values):
            variable.assign(value)
        copy.save(path)

    def _build_copy(self, optimizer):
        copy = type(self.model).from_config(self.model.get_config())
        if optimizer:
            copy.compile_from_config(self.model.get_compile_config())
        ours, theirs = _saved_state(copy, optimizer), _saved_state(self.model, optimizer)
        if [(v.shape, v.dtype) for v in ours] != [(v.shape, v.dtype) for v in theirs]:
            raise RuntimeError(
                "the checkpoint writer's copy of the model holds other variables than the "
                f"model ({len(ours)} against {len(theirs)})"
            )
        return copy
