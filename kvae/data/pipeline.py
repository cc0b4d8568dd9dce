"""tf.data pipelines over in-memory examples: the training batches (a fresh
permutation each epoch, remainder dropped, or fresh synthetic points) and
the validation batches."""

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
    in memory (uint8 for images), which is the cache. Synthetic datasets
    (`sampler` given) draw fresh points for every batch instead; their
    `train` array is a fixed sample, used where a finite training set is
    needed (the stage-2 posteriors).
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
                f"one batch of {batch_size}; lower --batch-size."
            )
        return steps

    def train_batches(self, batch_size, seed):
        """An endless tf.data pipeline of shuffled training batches."""
        import tensorflow as tf

        if self.sampler is not None:
            return self._sampled_batches(batch_size, seed)
        dataset = tf.data.Dataset.from_tensor_slices(self.train)
        dataset = dataset.shuffle(len(self.train), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=True).repeat()
        return dataset.map(_as_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE
        )

    def _sampled_batches(self, batch_size, seed):
        import tensorflow as tf

        def fresh_points():
            rng = np.random.default_rng(seed)
            while True:
                yield self.sampler(rng, batch_size)

        signature = tf.TensorSpec((batch_size, *self.shape), tf.float32)
        dataset = tf.data.Dataset.from_generator(fresh_points, output_signature=signature)
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
