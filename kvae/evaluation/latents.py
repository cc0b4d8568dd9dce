"""The latents: the variance law (Asperti & Trentin Eq. 7), inactive
latents, the reconstruction gain of each latent (Asperti 2019, Sec. 5), and
the same summary for stage 2 on the stage-1 latents."""

from kvae import metrics

CARD = {
    "variance_law": "variance law",
    "inactive_latents": "inactive latents",
    "active_latents": "active latents",
}


def run(context):
    """(the law, the inactive count and the per-latent table, their words)."""
    context.progress("variance law, inactive latents, reconstruction gain")
    options, law, inactive = context.options, context.law, context.inactive
    mu, _ = context.posterior
    gain_count = min(options.gain_images, context.count)
    gains = metrics.reconstruction_gain(
        context.stage1, context.real[:gain_count], mu[:gain_count], options.batch_size
    )
    numbers = {
        "variance_law": float(law["law"].mean()),
        "variance_law_mean_sigma": float(law["law_mean_sigma"].mean()),
        "inactive_latents": int(inactive.sum()),
        "active_latents": int((~inactive).sum()),
        "latents": [
            {
                "index": j,
                "var_mu": float(law["var_mu"][j]),
                "mean_sigma2": float(law["mean_sigma2"][j]),
                "mean_sigma": float(law["mean_sigma"][j]),
                "variance_law": float(law["law"][j]),
                "inactive": bool(inactive[j]),
                "reconstruction_gain": float(gains[j]),
            }
            for j in range(len(inactive))
        ],
    }
    if context.model.stage2 is not None:
        numbers["stage2"] = _stage2(context)
    words = {
        "variance_law": "mean over latents of Var_n(mu) + mean_n sigma^2 (Asperti & Trentin "
        "Eq. 7); variance_law_mean_sigma: Var_n(mu) + mean_n sigma, the original "
        "BalancingVAE code's variant",
        "inactive_latents": "latents with mean_n sigma^2 >= 0.8 (Asperti & Trentin, footnote 3)",
        "reconstruction_gain": f"per latent, on the first {gain_count} examples: MSE of the "
        "reconstruction from mu with that latent set to 0, minus the MSE from mu (Asperti "
        "2019, Sec. 5)",
    }
    return numbers, words


def _stage2(context):
    """Stage 2's gamma, variance law and inactive count on z = mu + sigma * eps."""
    model = context.model
    z = model.sample_posterior(*context.posterior, context.options.seed)
    law = metrics.variance_law(*metrics.encode(model.stage2, z, context.options.batch_size))
    return {
        "gamma_mode": model.stage2.gamma_mode,
        "gamma": model.stage2.gamma(),
        "variance_law": float(law["law"].mean()),
        "inactive_latents": int(metrics.inactive_latents(law["mean_sigma2"]).sum()),
        "latent_noise": model.latent_noise,
        "latent_scale": model.latent_scale,
    }
