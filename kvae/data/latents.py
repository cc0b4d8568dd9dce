"""Stage-2 training data: the stage-1 latents."""

import numpy as np

from kvae.data.pipeline import Dataset


class LatentDataset(Dataset):
    """Stage-2 training data (Dai & Wipf, original-code.md A.3): the stage-1
    posteriors (mu, sigma) of every training example, computed once; every
    batch draws a fresh z = mu + sigma * eps (`losses.gaussian_sample`).
    Validation uses one fixed draw."""

    def __init__(self, name, mu, log_sigma, validation_mu, validation_log_sigma, seed=0):
        from kvae import generation, seeds

        validation = generation.posterior_draw(
            validation_mu,
            validation_log_sigma,
            seeds.generator(seeds.validation_latents_seed(seed)),
        )
        # `train` holds the means: shapes and counts read them; batches add noise.
        super().__init__(name, np.asarray(mu, np.float32), validation)
        self.log_sigma = np.asarray(log_sigma, np.float32)

    def pass_batches(self, batch_size, rng):
        """One pass: a fresh permutation of the examples, floor(N /
        batch_size) batches, each a draw of z with fresh eps, all from `rng`."""
        from kvae import generation

        for rows in super().pass_batches(batch_size, rng):  # the means' rows
            yield generation.posterior_draw(self.train[rows], self.log_sigma[rows], rng)

    streams_rows = False
