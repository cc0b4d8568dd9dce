"""Load test of the BentoML service: batching on against batching off, both
against the model's own decode rate in this process.

    python benchmarks/serve_load.py [--model fmnist_two_stage_computed]
        [--concurrency 1 8 32 64] [--requests 5000] [--seconds 20] [--n 1]

First, in this process: `kvae.zoo.load(model).generate(n, mode="mean",
seed=s)` through the last stage (images/s, the median of 21 calls, at n = 1,
8, 64 and 256): the rate the service could reach, and the single-image
decode time.

For each setting (adaptive batching, `--arg batching=true`, and each
request decoded alone, `--arg batching=false`) it starts `bentoml serve` on
a free loopback port, waits for /readyz (the start-up time), records the
memory (RSS summed over the server's processes), then for each concurrency
level sends POST /mean-generate {"n": N, "seed": i} from that many
concurrent clients (asyncio tasks, one connection each) until --requests
requests are answered or --seconds pass, and records requests/s, p50 and
p99 latency and the failures; then the memory again. Loopback only; every
server is stopped. Prints Markdown tables; the figures of merit are each
HTTP row's images/s against the in-process batched rate, and the
one-client p50 against the in-process single-image time, measured in the
same run.
"""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_rss_mib(pid):
    """Resident memory of a process and its descendants, MiB (Linux /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in (Path("/proc") / str(current) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(current, []))
    return total / 1024


def start_server(model, batching, log_path):
    port = free_port()
    env = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "true",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    log = open(log_path, "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--arg",
            f"model={model}",
            "--arg",
            f"batching={str(batching).lower()}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.time()
    deadline = started + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bentoml serve exited; see {log_path}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url, time.time() - started
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop_server(process)
    raise SystemExit(f"bentoml serve not ready in 300 s; see {log_path}")


def stop_server(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


async def drive(clients, count, seconds, send):
    """Send up to `count` requests from `clients` concurrent asyncio tasks
    until they are all answered or `seconds` pass; `await send(index,
    client)` sends request `index` (0 .. count - 1) from client number
    `client` and returns what to record. Returns ([(index, record,
    seconds)], wall seconds). (A thread-per-client driver spent more CPU
    than the server on these two cores.)"""
    results, counter = [], iter(range(count))
    deadline = time.perf_counter() + seconds

    async def client(number):
        while time.perf_counter() < deadline:
            index = next(counter, None)
            if index is None:
                return
            begin = time.perf_counter()
            record = await send(index, number)
            results.append((index, record, time.perf_counter() - begin))

    started = time.perf_counter()
    await asyncio.gather(*(client(number) for number in range(clients)))
    return results, time.perf_counter() - started


async def generate_load(url, clients, count, seconds, n):
    """POST /mean-generate {"n": n, "seed": i} through `drive`, one aiohttp
    keep-alive connection per client; records the status."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(index, client):
            body = {"n": n, "seed": index}
            async with session.post(f"{url}/mean-generate", json=body) as response:
                await response.read()
                return response.status

        return await drive(clients, count, seconds, send)


def load(url, concurrency, requests, seconds, n):
    """(requests/s, p50 ms, p99 ms, answered, failed) at `concurrency`."""
    results, wall = asyncio.run(generate_load(url, concurrency, requests, seconds, n))
    latencies = [elapsed for _, status, elapsed in results if status == 200]
    failures = len(results) - len(latencies)
    if not latencies:
        return 0.0, float("nan"), float("nan"), 0, failures
    milliseconds = np.asarray(latencies) * 1000
    return (
        len(latencies) / wall,
        float(np.percentile(milliseconds, 50)),
        float(np.percentile(milliseconds, 99)),
        len(latencies),
        failures,
    )


def in_process_rates(model_name, sizes=(1, 8, 64, 256), calls=21):
    """{n: (images/s, seconds per call)} of the model's own generate in this
    process (the median of `calls` calls after one warm-up)."""
    import kvae

    model = kvae.zoo.load(model_name).to_float32()
    rates = {}
    for n in sizes:
        model.generate(n, mode="mean", seed=0)
        times = []
        for seed in range(calls):
            begin = time.perf_counter()
            model.generate(n, mode="mean", seed=seed)
            times.append(time.perf_counter() - begin)
        median = float(np.median(times))
        rates[n] = (n / median, median)
    return rates


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="fmnist_two_stage_computed")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--requests", type=int, default=5000, help="per concurrency level")
    parser.add_argument("--seconds", type=float, default=20, help="per concurrency level")
    parser.add_argument("--n", type=int, default=1, help="images per request")
    parser.add_argument("--logs", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    rates = in_process_rates(args.model)
    best = max(rate for rate, _ in rates.values())
    print(
        "in process: "
        + ", ".join(
            f"n={n} {rate:.0f} images/s ({seconds * 1000:.1f} ms)"
            for n, (rate, seconds) in rates.items()
        ),
        flush=True,
    )
    rows, startup = [], {}
    for batching in (True, False):
        process, url, startup[batching] = start_server(
            args.model, batching, args.logs / f"kvae-serve-batching-{batching}.log"
        )
        try:
            httpx.post(f"{url}/mean-generate", json={"n": args.n}, timeout=120)  # warm up
            memory_before = tree_rss_mib(process.pid)
            for concurrency in args.concurrency:
                rate, p50, p99, answered, failed = load(
                    url, concurrency, args.requests, args.seconds, args.n
                )
                rows.append([batching, concurrency, rate, p50, p99, answered, failed])
                print(
                    f"batching={batching} concurrency={concurrency}: {rate:.1f} req/s, "
                    f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, {failed} failed",
                    flush=True,
                )
            memory_after = tree_rss_mib(process.pid)
        finally:
            stop_server(process)
        for row in rows:
            if row[0] == batching:
                row += [memory_before, memory_after]
    print(
        f"\nmodel {args.model}, POST /mean-generate with n={args.n}, "
        f"{args.requests} requests or {args.seconds:g} s per level\n"
    )
    print("| in process, n | images/s | ms per call |")
    print("|---|---|---|")
    for n, (rate, seconds) in rates.items():
        print(f"| {n} | {rate:.0f} | {seconds * 1000:.1f} |")
    print(
        "\n| batching | clients | requests/s | images/s against in-process batched | p50 ms | "
        "p50 against in-process n=1 | p99 ms | answered | failed | server MiB before | after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    single = rates[1][1] * 1000
    for batching, concurrency, rate, p50, p99, answered, failed, before, after in rows:
        print(
            f"| {'on' if batching else 'off'} | {concurrency} | {rate:.1f} | "
            f"{rate * args.n / best:.2f} | {p50:.0f} | {p50 / single:.1f} | {p99:.0f} | "
            f"{answered} | {failed} | {before:.0f} | {after:.0f} |"
        )
    print(
        "\nstart-up to /readyz: "
        + ", ".join(f"batching {'on' if b else 'off'} {s:.1f} s" for b, s in startup.items())
    )
    print(
        "\nratio on / off, requests/s: "
        + ", ".join(
            f"{c} clients {on[2] / off[2]:.2f}"
            for c in args.concurrency
            for on in rows
            if on[0] and on[1] == c
            for off in rows
            if not off[0] and off[1] == c
            if off[2] > 0
        )
    )


if __name__ == "__main__":
    main()
