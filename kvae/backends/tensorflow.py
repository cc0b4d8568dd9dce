"""TensorFlow train and test steps (GradientTape), as Keras's own TF trainer
orders them. Under a tf.distribute strategy the step runs once per replica:
the loss is the replica's share of the global mean (so the optimizer's sum
over replicas is the global gradient), and gamma and the metrics use the
terms summed over the replicas (`distribute.global_terms`)."""

import tensorflow as tf

from kvae import distribute
from kvae.backends import unpack


def _gradients(model, x, noise=None, weights=None, scale_loss=True):
    with tf.GradientTape() as tape:
        terms = model.compute_terms(x, training=True, noise=noise, weights=weights)
        loss = terms["loss"]
        if scale_loss:
            # A LossScaleOptimizer multiplies by its dynamic scale; a plain
            # optimizer returns the loss unchanged.
            loss = model.optimizer.scale_loss(loss)
    gradients = tape.gradient(loss, model.trainable_variables)
    return terms, gradients


def train_step(model, data):
    x, noise, weights = unpack(data)
    terms, gradients = _gradients(model, x, noise, weights)
    model.optimizer.apply(gradients, model.trainable_variables)
    # All-reduce the terms after the optimizer step (whose gradient
    # reduction follows every batch-norm collective): replicas must issue
    # their collectives in the same order.
    with tf.control_dependencies([tf.identity(model.optimizer.iterations)]):
        terms = distribute.global_terms(terms)
    # Asperti & Trentin: gamma moves after the step, from this step's MSE.
    model.observation.update_gamma(terms["mse"])
    return _logs(model.update_trackers(terms))


def test_step(model, data):
    x, noise, weights = unpack(data)
    terms = model.compute_terms(x, training=False, noise=noise, weights=weights)
    return _logs(model.update_trackers(distribute.global_terms(terms)))


def _logs(logs):
    """The step's logs as Keras's TF trainer can reduce them. Every replica
    holds the global values; under MultiWorkerMirroredStrategy Keras 3.15
    reduces them with strategy.reduce("MEAN", v, axis=0), which fails on a
    scalar, so there each value is given a length-1 axis (the mean over
    replicas of equal values is the value)."""
    if not distribute.multi_worker():
        return logs
    return {name: tf.reshape(value, (1,)) for name, value in logs.items()}


def loss_and_gradients(model, x, noise=None):
    return _gradients(model, x, noise=noise, scale_loss=False)
