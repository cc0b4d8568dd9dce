"""tf.data pipelines over in-memory examples: the training batches (a fresh
permutation each epoch, remainder dropped, or fresh synthetic points) and
the validation batches."""

import itertools

import numpy as np

from kvae.data.errors import DataError


def as_float(array):
    """uint8 images to float32 in [0, 1]; other arrays as float32 (NumPy)."""
    array = np.asarray(array)
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)


def _as_float(batch):
    import tensorflow as tf

    if batch.dtype == tf.uint8:
        return tf.cast(batch, tf.float32) / 255.0
    return tf.cast(batch, tf.float32)


class Dataset:
    """A training set and its validation set, served as tf.data pipelines of
    float32 batches in [0, 1] for images.

    Training batches follow the originals: each epoch a fresh permutation,
    floor(N / batch_size) batches with the remainder dropped. The arrays stay
    in memory (uint8 for images), which is the cache; a batch is gathered
    from them by its row indices. Synthetic datasets (`sampler` given) draw
    fresh points for every batch instead; their `train` array is a fixed
    sample, used where a finite training set is needed (the stage-2
    posteriors).
    """

    def __init__(self, name, train, validation, sampler=None):
        self.name = name
        self.train = train
        self.validation = validation
        self.sampler = sampler
        self.shape = tuple(train.shape[1:])

    @property
    def num_train(self):
        return len(self.train)

    def steps_per_epoch(self, batch_size):
        """floor(N / batch_size): one pass over the training set."""
        steps = self.num_train // batch_size
        if steps < 1:
            raise DataError(
                f"{self.name}: {self.num_train} training examples are fewer than "
                f"one batch of {batch_size}; lower batch_size.",
                argument="batch_size",
            )
        return steps

    def pass_batches(self, batch_size, rng):
        """One pass over the training set (NumPy): the row indices of
        floor(N / batch_size) batches of a fresh permutation drawn from `rng`,
        the remainder dropped (original-code.md); for a synthetic dataset,
        as many batches of fresh points."""
        if self.sampler is not None:
            for _ in range(self.steps_per_epoch(batch_size)):
                yield self.sampler(rng, batch_size)
            return
        order = rng.permutation(self.num_train)
        for start in range(0, self.steps_per_epoch(batch_size) * batch_size, batch_size):
            yield order[start : start + batch_size]

    def stream(self, batch_size, seed, start=0):
        """The training stream of a run from its batch `start` on (NumPy):
        passes 0, 1, 2, ... back to back, pass p drawn from its own generator
        (`seeds.training_pass_seed`). Where a batch lies in the stream fixes
        what it holds, so a resumed run, or one split into calls of several
        steps, reads the batches an uninterrupted run reads."""
        from kvae import seeds

        per_pass = self.steps_per_epoch(batch_size)
        number, skip = divmod(start, per_pass)
        while True:
            rng = seeds.generator(seeds.training_pass_seed(seed, number))
            yield from itertools.islice(self.pass_batches(batch_size, rng), skip, None)
            number, skip = number + 1, 0

    @property
    def streams_rows(self):
        """Whether `pass_batches` yields row indices into `train` (kept
        training sets) rather than the batches themselves (fresh draws)."""
        return self.sampler is None

    def train_batches(self, batch_size, seed, steps=None, epoch=lambda: 0):
        """The training batches of one epoch as a tf.data pipeline of
        float32 batches: `steps` batches (default one pass), batches
        e * steps to (e + 1) * steps - 1 of `stream`, where e = `epoch()` is
        read each time the pipeline is iterated. Keras's fit iterates it
        again every epoch after the callbacks' on_epoch_begin, so a callback
        sets e; the pipeline is finite, so a call of several steps
        (steps_per_execution) ends with the epoch."""
        import tensorflow as tf

        steps = steps or self.steps_per_epoch(batch_size)

        def one_epoch():
            yield from itertools.islice(self.stream(batch_size, seed, epoch() * steps), steps)

        if self.streams_rows:
            signature = tf.TensorSpec((batch_size,), tf.int64)
        else:
            signature = tf.TensorSpec((batch_size, *self.shape), tf.float32)
        dataset = tf.data.Dataset.from_generator(one_epoch, output_signature=signature)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))
        if self.streams_rows:
            kept = tf.constant(self.train)
            dataset = dataset.map(
                lambda rows: _as_float(tf.gather(kept, rows)), num_parallel_calls=tf.data.AUTOTUNE
            )
        return dataset.prefetch(tf.data.AUTOTUNE)

    def validation_batches(self, batch_size):
        """The validation set in order, every example once, as batches
        {"x", "weight"} of exactly `batch_size` rows: the last one padded
        with zero-weight copies of zeros. Every batch then splits evenly
        over the devices of data parallelism (and draws the same noise on
        any device count), while the weighted means count each real example
        once (`VAE.compute_terms`)."""
        import tensorflow as tf

        def padded(batch):
            batch = _as_float(batch)
            count = tf.shape(batch)[0]
            padding = [[0, batch_size - count]] + [[0, 0]] * (len(self.shape))
            weight = tf.concat([tf.ones([count]), tf.zeros([batch_size - count])], axis=0)
            batch = tf.pad(batch, padding)
            batch.set_shape((batch_size, *self.shape))
            weight.set_shape((batch_size,))
            return {"x": batch, "weight": weight}

        dataset = tf.data.Dataset.from_tensor_slices(self.validation).batch(batch_size)
        return dataset.map(padded).prefetch(tf.data.AUTOTUNE)

    def examples(self, count, split="validation"):
        """The first `count` examples of a split as float32 NumPy."""
        return as_float((self.validation if split == "validation" else self.train)[:count])
