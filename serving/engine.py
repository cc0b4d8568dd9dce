"""The model side of the service: the loaded model, its compiled decoders
warmed for every batch size, one batcher per stage, and the generation
protocol of `kvae.generation` run against them.

This module imports Keras (and so TensorFlow); serving/service.py imports
it only inside the service's constructor, because BentoML's supervisor
process imports the service module to read its definition and must stay
small."""

import anyio
import numpy as np

from kvae import data, generation, seeds
from serving.batcher import Batcher, decode_thread, timed
from serving.model import load_model, model_card


class Engine:
    """A served model and how its decodes run.

    Args:
        spec, stage2: what `serving.model.load_model` reads.
        batching: batch concurrent decodes (serving/batcher.py), or decode
            each request alone.
        max_rows: the most rows of one decode call.
        max_wait_s: the longest a request waits for its decode to start.
    """

    def __init__(self, spec, stage2, batching, max_rows, max_wait_s):
        self.model = load_model(spec, stage2)
        self.background = data.background(model_card(spec, stage2).get("dataset"))
        self.batching = batching
        self.data_shape = tuple(self.model.data_shape)
        self.size = int(np.prod(self.data_shape))
        self.thread = decode_thread()
        self.decoders = {
            stage: Batcher(self._decoder(stage), self.thread, max_rows, max_wait_s)
            for stage in self.model.stages
        }
        for stage in self.model.stages:  # compile every batch size now, not on a request
            for size in generation.BATCH_BUCKETS:
                self._decoder(stage)(np.zeros((size, self.model.latent_dim_of(stage)), "float32"))
        self.model.encode(np.zeros((1, *self.data_shape), "float32"))  # an upload is one image

    def _decoder(self, stage):
        model = self.model.model(stage)
        return lambda latents: generation.decode_numpy(model, latents)

    @property
    def stages(self):
        return self.model.stages

    def latent_dim_of(self, stage):
        return self.model.latent_dim_of(stage)

    async def encode(self, x):
        """(mu, log_sigma) of q(z|x) for a batch of images."""
        return await anyio.to_thread.run_sync(self.model.encode, x)

    def posterior_draw(self, mu, log_sigma, seed):
        """z = mu + sigma * eps, eps from `seed` (the library's draw)."""
        return self.model.sample_posterior(mu, log_sigma, seed)

    async def decode(self, stage, latents):
        """(mean, log_gamma) of a stage's p(.|z) at latents: batched with
        other requests, or alone with batching off."""
        with timed("decode"):
            if self.batching:
                return await self.decoders[stage](latents)
            return await anyio.to_thread.run_sync(self.decoders[stage].decode, latents)

    async def generate(
        self, stage, latents=None, n=None, mode="mean", seed=None, temperature=1.0
    ):  # fmt: skip
        """The generation protocol of kvae.generation, as
        TwoStageVAE.generate runs it: images (N, prod(data_shape)) and the
        latents of each decode ({"z": stage-1 latents, "u": stage-2 ones})."""
        decoded = {}

        async def decode(stage, rows):
            decoded["z" if stage == 1 else "u"] = rows
            return await self.decode(stage, rows)

        steps = self.model.protocol(
            seeds.generator(seed), n=n, latents=latents, mode=mode,
            temperature=temperature, stage=stage,
        )  # fmt: skip
        images = await generation.run_async(steps, decode)
        return images.reshape(len(images), self.size), decoded
