"""TensorFlow train and test steps (GradientTape), as Keras's own TF trainer
orders them."""

import tensorflow as tf

from kvae.backends import unpack_x


def _gradients(model, x, noise=None, scale_loss=True):
    with tf.GradientTape() as tape:
        terms = model.compute_terms(x, training=True, noise=noise)
        loss = terms["loss"]
        if scale_loss:
            # A LossScaleOptimizer multiplies by its dynamic scale; a plain
            # optimizer returns the loss unchanged.
            loss = model.optimizer.scale_loss(loss)
    gradients = tape.gradient(loss, model.trainable_variables)
    return terms, gradients


def train_step(model, data):
    x = unpack_x(data)
    terms, gradients = _gradients(model, x)
    model.optimizer.apply(gradients, model.trainable_variables)
    # Asperti & Trentin: gamma moves after the step, from this step's MSE.
    model.observation.update_gamma(terms["mse"])
    return model.update_trackers(terms)


def test_step(model, data):
    terms = model.compute_terms(unpack_x(data), training=False)
    return model.update_trackers(terms)


def loss_and_gradients(model, x, noise=None):
    return _gradients(model, x, noise=noise, scale_loss=False)
