"""Building blocks shared by the networks, with the originals' constants."""

import math

import keras
from keras import layers, ops

from kvae import distribute

BN_EPSILON = 1e-5
"""Batch-norm epsilon of the originals (Keras default: 1e-3)."""

BN_MOMENTUM = 0.999
"""Batch-norm moving-average decay of the originals (Keras default: 0.99)."""


def debiased_moving_average(average, value, momentum, count):
    """One update of a zero-debiased exponential moving average.

    With the biased average b_t = m b_{t-1} + (1 - m) x_t, b_0 = 0, the
    debiased one is d_t = b_t / (1 - m^t) (Adam's bias correction, Kingma &
    Ba 2015, Sec. 3; TensorFlow's `assign_moving_average(zero_debias=True)`,
    which the originals' batch norm uses). In terms of d alone:

        d_t = [m (1 - m^(t-1)) d_(t-1) + (1 - m) x_t] / (1 - m^t)

    so d_1 = x_1 and the initial value is ignored.

    Args:
        average: d_{t-1}. value: x_t. momentum: m in (0, 1).
        count: t - 1, the number of earlier updates (float).

    Returns:
        d_t.
    """
    log_momentum = math.log(momentum)
    # 1 - m^t as -expm1(t log m): exact in float32 where 1 - 0.999^t is not.
    kept = momentum * -ops.expm1(count * log_momentum)
    corrected = -ops.expm1((count + 1.0) * log_momentum)
    return (kept * average + (1.0 - momentum) * value) / corrected


@keras.saving.register_keras_serializable(package="kvae")
class DebiasedBatchNormalization(layers.BatchNormalization):
    """Batch normalization whose moving statistics are zero-debiased, as the
    originals' (see `debiased_moving_average`). With momentum 0.999, Keras's
    plain moving averages still weigh their initial 0 and 1 by 0.999^t (74 %
    after 300 steps), which makes inference after a short run poor.
    Renormalization and masks are not supported.

    In training under a tf.distribute strategy of several replicas, the
    batch statistics are synchronised (all-reduced) over the replicas, so N
    devices normalise with the global batch's moments as one device does; on
    JAX a step already sees the global batch. Nothing of this is saved: a
    checkpoint moves between device counts and backends."""

    def build(self, input_shape):
        super().build(input_shape)
        # autocast=False: under a mixed policy Keras would hand `call` this
        # float32 counter as a 16-bit value, and in bfloat16 256 + 1 == 256
        # (the count, and with it the debiasing, stopped at 256 steps)
        self.update_count = self.add_weight(
            name="update_count",
            shape=(),
            initializer="zeros",
            trainable=False,
            dtype="float32",
            autocast=False,
        )

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable):
            return super().call(inputs, training=False)
        # float32 at least: batch norm upcasts 16-bit inputs, as Keras's does.
        inputs = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        if distribute.replicas_in_sync() > 1:
            mean, variance = self._global_moments(inputs)
        else:
            mean, variance = self._moments(inputs, None)
        count = ops.cast(self.update_count, inputs.dtype)
        for moving, batch_value in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(
                debiased_moving_average(
                    ops.cast(moving, inputs.dtype), batch_value, self.momentum, count
                )
            )
        self.update_count.assign(self.update_count + 1.0)
        outputs = ops.batch_normalization(
            x=inputs,
            mean=mean,
            variance=variance,
            axis=self.axis,
            offset=None if self.beta is None else ops.cast(self.beta, inputs.dtype),
            scale=None if self.gamma is None else ops.cast(self.gamma, inputs.dtype),
            epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)

    def _global_moments(self, inputs):
        """Mean and variance over the global batch of a multi-replica step,
        in two passes as on one device (the one-pass E[x^2] - E[x]^2
        cancels badly when a channel's mean is large against its spread):
        the replicas' sums and counts all-reduced together, then their sums
        of squared deviations from the global mean."""
        axes = self._reduction_axes
        local_count = ops.cast(ops.size(inputs) // ops.shape(inputs)[-1], inputs.dtype)
        sums = distribute.global_sum(
            ops.concatenate([ops.sum(inputs, axis=axes), ops.reshape(local_count, (1,))])
        )
        mean = sums[:-1] / sums[-1]
        squared = distribute.global_sum(ops.sum(ops.square(inputs - mean), axis=axes))
        return mean, squared / sums[-1]


def batch_norm(name, dtype, momentum=BN_MOMENTUM, epsilon=BN_EPSILON):
    """Zero-debiased batch normalization, by default with the originals'
    epsilon and momentum."""
    return DebiasedBatchNormalization(epsilon=epsilon, momentum=momentum, name=name, dtype=dtype)


def spectral_normalize(kernel, vector_u):
    """One power iteration of spectral normalisation (Miyato et al. 2018).

    The kernel is viewed as a matrix W of shape (prod(kernel.shape[:-1]),
    out). With u the persistent estimate of W's first left singular vector:
    v = normalize(W^T u), u' = normalize(W v), sigma = u'^T W v, and the
    returned kernel is W / sigma. u' and v carry no gradient; sigma does.

    Args:
        kernel: tensor of rank >= 2, output units last.
        vector_u: tensor of shape (rows, 1), rows = prod(kernel.shape[:-1]).

    Returns:
        (normalized_kernel, new_vector_u).
    """
    matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
    vector_v = _l2_normalize(ops.matmul(ops.transpose(matrix), vector_u))
    new_u = _l2_normalize(ops.matmul(matrix, vector_v))
    new_u = ops.stop_gradient(new_u)
    vector_v = ops.stop_gradient(vector_v)
    sigma = ops.matmul(ops.matmul(ops.transpose(new_u), matrix), vector_v)
    return kernel / ops.reshape(sigma, ()), new_u


def _l2_normalize(vector, epsilon=1e-12):
    return vector * ops.rsqrt(ops.maximum(ops.sum(ops.square(vector)), epsilon))


class _SpectralNormLayer(keras.layers.Layer):
    """Holds kernel, bias and u; the subclass says how the kernel is used.

    As in Dai & Wipf's code, u is updated on every forward pass, also at
    inference.
    """

    def __init__(self, units, kernel_stddev=0.02, truncated=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_stddev = kernel_stddev
        self.truncated = truncated

    def _kernel_shape(self, input_shape):
        raise NotImplementedError

    def build(self, input_shape):
        shape = self._kernel_shape(input_shape)
        initializer_class = (
            keras.initializers.TruncatedNormal
            if self.truncated
            else keras.initializers.RandomNormal
        )
        self.kernel = self.add_weight(
            name="kernel",
            shape=shape,
            initializer=initializer_class(stddev=self.kernel_stddev),
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        rows = 1
        for size in shape[:-1]:
            rows *= size
        self.vector_u = self.add_weight(
            name="vector_u",
            shape=(rows, 1),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
        )

    def normalized_kernel(self):
        kernel, new_u = spectral_normalize(self.kernel, self.vector_u)
        self.vector_u.assign(ops.cast(new_u, self.vector_u.dtype))
        return kernel

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_stddev": self.kernel_stddev,
            "truncated": self.truncated,
        }


@keras.saving.register_keras_serializable(package="kvae")
class SpectralNormDense(_SpectralNormLayer):
    """Dense layer with a spectrally normalised kernel, N(0, 0.02) init."""

    def _kernel_shape(self, input_shape):
        return (input_shape[-1], self.units)

    def call(self, inputs):
        return ops.matmul(inputs, self.normalized_kernel()) + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)


@keras.saving.register_keras_serializable(package="kvae")
class SpectralNormConv2D(_SpectralNormLayer):
    """Strided 'same' Conv2D with a spectrally normalised kernel,
    truncated-normal(0, 0.02) init by default."""

    def __init__(self, units, kernel_size=4, strides=2, truncated=True, **kwargs):
        super().__init__(units, truncated=truncated, **kwargs)
        self.kernel_size = kernel_size
        self.strides = strides

    def _kernel_shape(self, input_shape):
        return (self.kernel_size, self.kernel_size, input_shape[-1], self.units)

    def call(self, inputs):
        outputs = ops.conv(inputs, self.normalized_kernel(), strides=self.strides, padding="same")
        return outputs + self.bias

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        side = lambda n: None if n is None else -(-n // self.strides)  # noqa: E731
        return (batch, side(height), side(width), self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
        }


def image_output(features, channels, pixel, make_layer):
    """The decoder's image head: mean in [0, 1] (sigmoid), and for per-pixel
    sigma a linear log sigma from the same layer's second half of channels.

    Args:
        features: the last feature map.
        channels: the image's channel count C.
        pixel: whether to output a per-pixel log sigma (LV-VAE).
        make_layer: callable(filters) -> the final (linear) layer.

    Returns:
        x_mean, or [x_mean, x_log_sigma]; float32.
    """
    raw = make_layer(2 * channels if pixel else channels)(features)
    if not pixel:
        return layers.Activation("sigmoid", dtype="float32", name="x_mean")(raw)
    mean_logits, log_sigma = ops.split(raw, 2, axis=-1)
    x_mean = layers.Activation("sigmoid", dtype="float32", name="x_mean")(mean_logits)
    x_log_sigma = layers.Activation("linear", dtype="float32", name="x_log_sigma")(log_sigma)
    return [x_mean, x_log_sigma]


def vector_output(features, dims, pixel, dtype, name="x_mean"):
    """A linear Dense head for vector data, with a per-dimension log sigma
    for `pixel` (twice the units). Float32 outputs."""
    raw = layers.Dense(2 * dims if pixel else dims, name=name, dtype=dtype)(features)
    if not pixel:
        return layers.Activation("linear", dtype="float32", name=f"{name}_32")(raw)
    mean, log_sigma = ops.split(raw, 2, axis=-1)
    return [
        layers.Activation("linear", dtype="float32", name=f"{name}_32")(mean),
        layers.Activation("linear", dtype="float32", name="x_log_sigma")(log_sigma),
    ]


def check_vector_shape(data_shape, net):
    """Vector networks take examples of shape (D,)."""
    if len(data_shape) != 1:
        raise ValueError(
            f"The {net} network takes vectors (D,). Received: data_shape={tuple(data_shape)}"
        )


def gaussian_heads(features, latent_dim):
    """Two linear float32 Dense heads: mu and log sigma of q(z|x)."""
    mu = layers.Dense(latent_dim, name="mu", dtype="float32")(features)
    log_sigma = layers.Dense(latent_dim, name="log_sigma", dtype="float32")(features)
    return [mu, log_sigma]
