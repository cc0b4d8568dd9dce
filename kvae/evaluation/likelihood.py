"""The likelihood bound: the ELBO per example (KL weight 1, every gamma term
and 1/2 log 2 pi included, so that F-, LS- and LV-VAE compare), bits per
dimension, and the importance-weighted bound with more than one draw."""

import math

from kvae import metrics

CARD = {"elbo_nats": "ELBO (nats)", "bits_per_dim": "bits/dim"}


def run(context):
    """(the ELBO and its conversions, their words)."""
    options = context.options
    draws = f"{options.iwae} draw{'s' if options.iwae > 1 else ''}"
    context.progress(f"ELBO ({draws} of z per example)")
    bound = metrics.elbo(
        context.stage1,
        context.real,
        samples=options.iwae,
        seed=options.seed,
        batch_size=options.batch_size,
    )
    elbo_nats = float(bound["elbo"].mean())
    numbers = {
        "elbo_nats": elbo_nats,
        "elbo_nats_sem": float(bound["elbo"].std() / math.sqrt(context.count)),
        "bits_per_dim": metrics.bits_per_dim(-elbo_nats, context.num_dims),
        "elbo_bits_per_dim": metrics.bits_per_dim(elbo_nats, context.num_dims),
        "log_likelihood_nats": float(bound["log_likelihood"].mean()),
        "kl_nats": float(bound["kl"].mean()),
    }
    if "iwae" in bound:
        iwae_nats = float(bound["iwae"].mean())
        numbers["iwae_nats"] = iwae_nats
        numbers["iwae_bits_per_dim"] = metrics.bits_per_dim(-iwae_nats, context.num_dims)
    words = {
        "elbo": f"mean over examples of log p(x|z) - KL(q(z|x) || N(0, I)), KL weight 1, "
        f"{options.iwae} draw(s) of z, gamma terms and 1/2 log 2 pi included; a continuous "
        f"density on data in [0, 1], no dequantisation; bits_per_dim = -elbo_nats / "
        f"({context.num_dims} ln 2), elbo_bits_per_dim = its negative (the sign of Berger & "
        "Sebag's Table 2)",
    }
    return numbers, words
