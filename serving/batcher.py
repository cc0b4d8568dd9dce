"""Adaptive batching inside the serving process.

Concurrent requests put their latents in a queue; one task takes whatever
is waiting (whole requests, up to `max_rows` rows), decodes it in one call
on the decode thread, and hands each request its rows. Nothing waits on
purpose: while one batch decodes, the next one gathers, so a lone request
costs one decode of its own rows and a busy server decodes large batches.
A request that has waited longer than `max_wait_s` when its batch would
start gets ServiceUnavailable (a 503) instead of a late answer.

The rows a request gets back are the rows of its own latents:
`kvae.generation.decode_numpy` decodes each row on its own, so an image
depends on its request only, never on which requests shared its batch.
"""

import asyncio
import contextlib
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import bentoml
import numpy as np
from bentoml.exceptions import ServiceUnavailable

STAGE_SECONDS = bentoml.metrics.Histogram(
    name="kvae_stage_seconds",
    documentation="Seconds a request spends in each stage: decode (from asking for its "
    "decode, queueing included, to having its rows) and answer (encoding the PNG or JSON)",
    labelnames=["stage"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
"""The stage timers of /metrics (benchmarks/serve_profile.py reads them)."""
BATCH_ROWS = bentoml.metrics.Histogram(
    name="kvae_batch_rows",
    documentation="Rows (latents) decoded together in one call of the batcher",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


class Batcher:
    """Batched calls of `decode(rows) -> array or tuple of arrays` whose
    leading axis is the row (a tuple member without one, such as a scalar
    log gamma, is given whole to every request).

    Args:
        decode: the synchronous function, run on `executor`.
        executor: where decodes run; one thread serialises them, and the
            compiled decoders use the cores themselves.
        max_rows: the most rows one call decodes (larger requests are
            decoded alone).
        max_wait_s: the longest a request may wait for its batch to start.
    """

    def __init__(self, decode, executor, max_rows, max_wait_s):
        self.decode, self.executor = decode, executor
        self.max_rows, self.max_wait_s = max_rows, max_wait_s
        self.waiting = deque()
        self.worker = None
        self.batches = 0
        self.rows = 0

    async def __call__(self, rows):
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self.waiting.append((np.asarray(rows), answer, time.perf_counter()))
        if self.worker is None or self.worker.done():
            self.worker = loop.create_task(self._work())
        return await answer

    def _take(self):
        """The next batch: waiting requests in order, up to max_rows rows
        (at least one request); late requests are answered with a 503."""
        batch, count, now = [], 0, time.perf_counter()
        while self.waiting:
            rows, answer, since = self.waiting[0]
            if batch and count + len(rows) > self.max_rows:
                break
            self.waiting.popleft()
            if answer.done():  # the client went away
                continue
            if now - since > self.max_wait_s:
                answer.set_exception(
                    ServiceUnavailable(
                        f"overloaded: waited {now - since:.1f} s for a decode; retry later"
                    )
                )
                continue
            batch.append((rows, answer))
            count += len(rows)
        return batch

    async def _work(self):
        loop = asyncio.get_running_loop()
        while self.waiting:
            batch = self._take()
            if not batch:
                continue
            stacked = np.concatenate([rows for rows, _ in batch])
            try:
                result = await loop.run_in_executor(self.executor, self.decode, stacked)
            except Exception as error:  # noqa: BLE001 - every waiting request gets it
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            self.batches += 1
            self.rows += len(stacked)
            BATCH_ROWS.observe(len(stacked))
            start = 0
            for rows, answer in batch:
                end = start + len(rows)
                if not answer.done():
                    answer.set_result(split_rows(result, start, end))
                start = end


def split_rows(result, start, end):
    """Rows start:end of each member of a decode's result (members without
    a row axis, such as a scalar, whole)."""
    if isinstance(result, tuple):
        return tuple(split_rows(member, start, end) for member in result)
    return result if np.ndim(result) == 0 else result[start:end]


@contextlib.contextmanager
def timed(stage):
    """Observe the seconds of the block in STAGE_SECONDS under `stage`."""
    begin = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage=stage).observe(time.perf_counter() - begin)


def decode_thread():
    """The one thread every decode of a service runs on."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvae-decode")
