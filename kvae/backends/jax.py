"""JAX train and test steps: pure functions of the model state, computing the
same numbers as the TensorFlow steps.

Keras's JAX trainer passes `state = (trainable, non_trainable, optimizer,
metrics)` variable values and expects `(logs, state)` back. The model's
keras.ops code runs inside a `StatelessScope` that maps each variable to its
value and collects the assignments (batch-norm statistics, the seed
generator, the computed gamma, the metric trackers).
"""

import jax
from keras import StatelessScope

from kvae import distribute
from kvae.backends import unpack


def _run_stateless(variables, values, function):
    """Run `function()` with `variables` read as `values`; return its result
    and the variables' values after it."""
    with StatelessScope(state_mapping=list(zip(variables, values))) as scope:
        result = function()
    return result, [scope.get_current_value(v) for v in variables]


def _terms_and_gradients(
    model, trainable, non_trainable, optimizer_values, x, noise=None, weights=None
):
    """(terms, non_trainable after the forward pass), gradients of the
    loss, scaled by the LossScaleOptimizer when there is one."""

    def scaled_loss(trainable):
        variables = model.trainable_variables + model.non_trainable_variables
        terms, new_values = _run_stateless(
            variables,
            list(trainable) + list(non_trainable),
            lambda: model.compute_terms(x, training=True, noise=noise, weights=weights),
        )
        loss = terms["loss"]
        if optimizer_values is not None:
            loss, _ = _run_stateless(
                model.optimizer.variables,
                optimizer_values,
                lambda: model.optimizer.scale_loss(loss),
            )
        return loss, (terms, new_values[len(model.trainable_variables) :])

    (_, aux), gradients = jax.value_and_grad(scaled_loss, has_aux=True)(trainable)
    return aux, gradients


def _logs(model, metrics_values, terms):
    return _run_stateless(
        model.metrics_variables,
        metrics_values,
        lambda: model.update_trackers(terms),
    )


def train_step(model, state, data):
    trainable, non_trainable, optimizer_values, metrics_values = state
    x, noise, weights = unpack(data)
    (terms, non_trainable), gradients = _terms_and_gradients(
        model, trainable, non_trainable, optimizer_values, x, noise, weights
    )
    trainable, optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, gradients, trainable
    )
    # A jitted step sees the global batch: global_terms only adds the
    # active count. Asperti & Trentin: gamma moves after the step, from
    # this step's MSE.
    terms = distribute.global_terms(terms)
    _, non_trainable = _run_stateless(
        model.non_trainable_variables,
        non_trainable,
        lambda: model.observation.update_gamma(terms["mse"]),
    )
    logs, metrics_values = _logs(model, metrics_values, terms)
    return logs, (trainable, non_trainable, optimizer_values, metrics_values)


def test_step(model, state, data):
    trainable, non_trainable, metrics_values = state
    variables = model.trainable_variables + model.non_trainable_variables
    x, noise, weights = unpack(data)
    terms, values = _run_stateless(
        variables,
        list(trainable) + list(non_trainable),
        lambda: model.compute_terms(x, training=False, noise=noise, weights=weights),
    )
    terms = distribute.global_terms(terms)
    non_trainable = values[len(model.trainable_variables) :]
    logs, metrics_values = _logs(model, metrics_values, terms)
    return logs, (trainable, non_trainable, metrics_values)


def loss_and_gradients(model, x, noise=None):
    """Compiled as one program: run op by op, JAX compiles every primitive
    on its own, which took 44 s for the four small models of the backend
    parity test (a few seconds jitted)."""

    def terms_and_gradients(trainable, non_trainable, x, noise):
        (terms, _), gradients = _terms_and_gradients(
            model, trainable, non_trainable, None, x, noise=noise
        )
        return terms, gradients

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    return jax.jit(terms_and_gradients)(trainable, non_trainable, x, noise)
