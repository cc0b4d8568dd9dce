"""Data-parallel training on Keras's own engines: `keras.distribution` on
JAX, `tf.distribute` on TensorFlow.

    with distribute.data_parallel(devices=None):   # all local accelerators
        model = kvae.VAE(...)                       # built under the distribution
        model.compile(); model.fit(...)

The global batch is split over the devices. What makes N devices compute
what one device computes (kvae/models.py and kvae/backends use these):

- every mean of the loss is a replica's *share* of the global mean,
  sum_i w_i l_i / sum over all replicas of sum_i w_i, so the optimizer's sum
  of the replicas' gradients is the gradient of the global mean
  (`global_sum` gives the denominator);
- the logged terms, the batch MSE of the computed gamma and the latent
  variances are summed over replicas (`global_sum`) before they are used,
  so every replica updates gamma with the global batch's MSE;
- the eps of z = mu + sigma * eps is drawn for the global batch from the
  shared seed state and each replica takes its rows (`replica_rows`);
- batch norm computes its statistics over the global batch
  (`DebiasedBatchNormalization` all-reduces its moments under a strategy).

On JAX a step is one jitted program over global arrays, so these helpers are
identities there; on TensorFlow they act inside a replica context with more
than one replica.

Several hosts (`processes`): TensorFlow's MultiWorkerMirroredStrategy from
TF_CONFIG, JAX's `keras.distribution.initialize()` from the
KERAS_DISTRIBUTION_* variables; both must start before the backend runs
anything, which `kvae.training` sees to, and process I > 0 writes its run
folder to OUT/worker-I (`worker_folder`).
"""

import contextlib

import keras
from keras import ops

from kvae import losses
from kvae.errors import KvaeError

MODES = ("none", "data")


class DistributeError(KvaeError):
    """A distribution that cannot run here (too few devices, a batch that
    does not split)."""


def _tf_replica_context():
    """The TF replica context of a multi-replica step, or None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context


def replicas_in_sync():
    """How many replicas share the current step (1 outside a strategy and on
    JAX, where a step sees the global batch)."""
    context = _tf_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def strategy_replicas():
    """Replicas of the TensorFlow strategy in scope (1 without one, and on
    JAX), for decisions taken outside a step."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def multi_worker():
    """Whether the TensorFlow strategy in scope spans several workers
    (MultiWorkerMirroredStrategy from TF_CONFIG)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._num_workers > 1  # noqa: SLF001
    )


def global_sum(value):
    """`value` summed over the replicas of the step (an all-reduce on
    TensorFlow under a strategy; itself otherwise). Works on nests."""
    context = _tf_replica_context()
    if context is None:
        return value
    return context.all_reduce("SUM", value)


def example_weights(x, weights=None):
    """(weights, count) of a replica's batch `x`: the given (B,) example
    weights as float32 (1 for an example, 0 for padding) and their sum over
    the replicas, or ones and the global batch size when none are given."""
    if weights is None:  # every example counts: the global count is known
        local = ops.shape(x)[0]
        return ops.ones((local,), "float32"), ops.cast(local * replicas_in_sync(), "float32")
    weights = ops.cast(weights, "float32")
    return weights, global_sum(ops.sum(weights))


def global_terms(terms):
    """The global batch's loss terms from a replica's shares
    (`losses.batch_terms`): summed over the replicas (the shares themselves
    on one device), and the active count of the global latent variances."""
    additive = ("loss", "recon", "kl", "mse", "gamma", "latent_variance")
    totals = global_sum({key: terms[key] for key in additive})
    return {
        **totals,
        "active": losses.count_active(totals["latent_variance"]),
        "count": terms["count"],
    }


def replica_rows(global_value, local_count):
    """This replica's rows of a tensor drawn for the global batch (replicas
    hold equal consecutive slices, as tf.distribute splits a batch)."""
    context = _tf_replica_context()
    if context is None:
        return global_value
    import tensorflow as tf

    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    return global_value[replica * local_count : (replica + 1) * local_count]


MULTI_HOST_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"
"""Set (with KERAS_DISTRIBUTION_JOB_ADDRESSES and KERAS_DISTRIBUTION_PROCESS_ID)
on every host of a multi-host JAX run; see `keras.distribution.initialize`."""


def _multi_host_jax():
    """Start JAX's multi-process runtime once when the environment asks for
    several processes; returns whether it did."""
    import os

    if int(os.environ.get(MULTI_HOST_ENV, "1")) <= 1:
        return False
    import jax

    # is_initialized, not process_count: asking for the process count
    # starts XLA, after which JAX refuses to join the cluster
    if not jax.distributed.is_initialized():
        try:
            keras.distribution.initialize()
        except RuntimeError as error:
            raise DistributeError(
                f"{MULTI_HOST_ENV} is set, but JAX has already started ({error}); start the "
                "multi-host run from `python -m kvae.train` or call "
                "keras.distribution.initialize() first."
            ) from error
    return True


def local_devices(count=None):
    """The devices data parallelism would use: the accelerators (GPUs,
    TPUs), else the CPU devices, the first `count` of them when given. On a
    multi-host JAX run (`MULTI_HOST_ENV`), every host's devices."""
    import os

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        listing = jax.devices if _multi_host_jax() else jax.local_devices
        devices = [device for device in listing() if device.platform != "cpu"]
        devices = devices or listing(backend="cpu")
        names = [f"{device.platform}:{device.id}" for device in devices]
    elif backend == "tensorflow":
        import tensorflow as tf

        if os.environ.get("TF_CONFIG"):
            if count is not None:
                raise DistributeError(
                    f"devices={count}: with TF_CONFIG every worker trains on all of its "
                    "devices; hide the others with CUDA_VISIBLE_DEVICES.",
                    argument="devices",
                )
            strategy = start_multi_worker()
            local = [device.split("/device:")[-1] for device in strategy.extended.worker_devices]
            return [
                f"worker {task} {device}"
                for task in range(strategy.extended._num_workers)  # noqa: SLF001
                for device in local
            ]
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        names = [device.name for device in devices]
    else:
        raise DistributeError(f"kvae distributes on JAX and TensorFlow, not {backend}.")
    if count is not None:
        if count > len(names):
            raise DistributeError(
                f"devices={count}: only {len(names)} device(s) here ({', '.join(names)}).",
                argument="devices",
            )
        names = names[:count]
    return names


_MULTI_WORKER = []


def start_multi_worker():
    """The MultiWorkerMirroredStrategy of a TensorFlow multi-worker run (the
    cluster and this worker's task from TF_CONFIG), created once. TensorFlow
    accepts it only before it has run anything, so the training entry
    points call this first. Its collectives carry ordering tokens, so every
    worker issues the in-step all-reduces (batch norm's moments, the loss
    terms) in one order."""
    if not _MULTI_WORKER:
        import tensorflow as tf

        try:
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        except RuntimeError as error:
            raise DistributeError(
                f"TF_CONFIG is set, but TensorFlow has already started ({error}); start the "
                "multi-worker run from `python -m kvae.train` or call "
                "kvae.distribute.start_multi_worker() first."
            ) from error
    return _MULTI_WORKER[0]


def processes():
    """(this process's index, the process count) of a multi-host run: on
    TensorFlow from TF_CONFIG (the chief, if the cluster names one, is 0,
    then the workers in order), on JAX from the KERAS_DISTRIBUTION_*
    variables; (0, 1) otherwise."""
    import json
    import os

    backend = keras.backend.backend()
    if backend == "jax":
        count = int(os.environ.get(MULTI_HOST_ENV, "1"))
        return int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0")), max(count, 1)
    if backend != "tensorflow" or not os.environ.get("TF_CONFIG"):
        return 0, 1
    config = json.loads(os.environ["TF_CONFIG"])
    chiefs = len(config.get("cluster", {}).get("chief", []))
    workers = chiefs + len(config.get("cluster", {}).get("worker", []))
    task = config.get("task", {})
    if task.get("type") not in ("chief", "worker"):
        raise DistributeError(
            f"TF_CONFIG task type {task.get('type')!r}: kvae runs chief and worker tasks only."
        )
    index = int(task.get("index", 0)) + (chiefs if task["type"] == "worker" else 0)
    return index, max(workers, 1)


def worker_folder(out):
    """Where this process writes its run folder: `out` on process 0 (the
    chief) and on a single host; `out/worker-I` on process I > 0 of a
    multi-host run, which writes the same files (it holds the same
    weights) without racing the chief for them on a shared disk."""
    from pathlib import Path

    index, _ = processes()
    return Path(out) if index == 0 else Path(out) / f"worker-{index}"


def check_batch(batch_size, devices):
    """The global batch must split evenly over the devices."""
    if batch_size % devices:
        raise DistributeError(
            f"batch_size={batch_size} does not divide over {devices} "
            "devices; give a multiple of the device count.",
            argument="batch_size",
        )


@contextlib.contextmanager
def data_parallel(devices=None):
    """A context in which models are built and trained data-parallel over
    `devices` (names from `local_devices`, default all). Yields the number
    of replicas. On JAX it sets `keras.distribution.DataParallel` (and
    clears it on exit); on TensorFlow it enters a `MirroredStrategy` scope."""
    names = local_devices() if devices is None else list(devices)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        by_name = {f"{device.platform}:{device.id}": device for device in jax.devices()}
        distribution = keras.distribution.DataParallel(devices=[by_name[n] for n in names])
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(distribution)
        try:
            yield len(names)
        finally:
            keras.distribution.set_distribution(previous)
    elif processes()[1] > 1:
        strategy = start_multi_worker()
        with strategy.scope():
            yield strategy.num_replicas_in_sync
    else:
        import tensorflow as tf

        # ReductionToOneDevice: the in-step all-reduces (batch norm's
        # moments, the loss terms) go through merge_call, which keeps every
        # replica in step; collective all-reduces need the replicas to issue
        # them in one order, which independent reductions do not guarantee.
        strategy = tf.distribute.MirroredStrategy(
            devices=names, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
        with strategy.scope():
            yield strategy.num_replicas_in_sync


def simulate_cpu_devices(count):
    """Split the host CPU into `count` devices (before the backend starts):
    JAX through XLA_FLAGS, TensorFlow through logical devices. For tests and
    trying multi-device runs on one machine."""
    import os

    backend = keras.backend.backend()
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    elif backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
