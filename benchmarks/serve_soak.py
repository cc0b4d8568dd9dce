"""Soak test of the BentoML service under good and hostile requests.

    python benchmarks/serve_soak.py [--model fmnist_two_stage_computed]
        [--clients 64] [--requests 5000] [--bad 0.2] [--seconds 900]

Starts `bentoml serve` (batching on) on a free loopback port, warms it up,
then runs identical rounds (--rounds, default 2): --requests requests from --clients
concurrent clients, a fraction --bad of them hostile (negative and huge seeds, NaN
latents, unknown fields, broken JSON, multipart without a boundary, a text
part for the image, a decompression bomb, ...), the rest good
(/mean-generate and /sample-generate with n from 1 to 4 in both formats, and
/encode). Each round stops early after --seconds. Reports answers by status
for good and bad requests, p50 / p99 latency of the good ones, the server's
resident memory (RSS over its processes) before the first round, after it
and after the second, and the tracebacks in the server log. Targets (issue
16): no 5xx, every bad request a 4xx, memory growth over the second round
under 5 % of the first round's end. Loopback only; the server is stopped.
"""

import argparse
import asyncio
import collections
import io
import random
import sys
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import drive, start_server, stop_server, tree_rss_mib  # noqa: E402


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png():
    buffer = io.BytesIO()
    Image.new("L", (16000, 16000)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def requests_of(latent_dim):
    """(good, bad): lists of functions rng -> (route, httpx keyword arguments)."""
    fashion = png_bytes((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8))
    bomb = bomb_png()
    json_header = {"content-type": "application/json"}

    def generate(route):
        def make(rng):
            body = {"n": rng.randint(1, 4), "seed": rng.randint(0, 2**31)}
            body["format"] = rng.choice(["png", "json"])
            return route, {"json": body}

        return make

    good = [
        generate("/mean-generate"),
        generate("/sample-generate"),
        lambda rng: ("/encode", {"files": {"image": ("x.png", fashion, "image/png")}}),
    ]
    bad = [
        lambda rng: ("/sample-generate", {"json": {"seed": -rng.randint(1, 10**6)}}),
        lambda rng: ("/mean-generate", {"json": {"seed": 2**64 + rng.randint(0, 9)}}),
        lambda rng: (
            "/mean-generate",
            {
                "content": b'{"z": [[NaN' + b", 0" * (latent_dim - 1) + b"]]}",
                "headers": json_header,
            },
        ),
        lambda rng: ("/mean-generate", {"json": {"n": 2, "bogus": rng.random()}}),
        lambda rng: ("/mean-generate", {"content": b'{"n": ', "headers": json_header}),
        lambda rng: ("/mean-generate", {"json": {"n": 0}}),
        lambda rng: ("/mean-generate", {"json": {"z": [[0.0] * (latent_dim + 1)]}}),
        lambda rng: (
            "/encode",
            {"content": b"--x--", "headers": {"content-type": "multipart/form-data"}},
        ),
        lambda rng: ("/encode", {"files": [("image", (None, "http://127.0.0.1:1/x.png"))]}),
        lambda rng: ("/reconstruct", {"files": {"image": ("x.png", fashion[:60], "image/png")}}),
        lambda rng: ("/encode", {"files": {"image": ("x.png", bomb, "image/png")}}),
    ]
    return good, bad


def aiohttp_arguments(kwargs):
    """httpx-style request arguments (json, content + headers, files) as
    aiohttp's (json, data + headers, a FormData)."""
    import aiohttp

    if "files" not in kwargs:
        return (
            {"json": kwargs["json"]}
            if "json" in kwargs
            else {
                "data": kwargs["content"],
                "headers": kwargs["headers"],
            }
        )
    files = kwargs["files"]
    form = aiohttp.FormData()
    for name, (filename, content, *kind) in files.items() if isinstance(files, dict) else files:
        if filename is None:
            form.add_field(name, content)
        else:
            form.add_field(name, content, filename=filename, content_type=kind[0])
    return {"data": form}


def run_round(url, clients, count, bad_fraction, seconds, latent_dim, seed):
    """One round: {"good": Counter(status), "bad": Counter(status),
    "latencies": [s of good 200s], "wall": s, "sent": n}."""
    good, bad = requests_of(latent_dim)
    plan_rng = random.Random(seed)
    plan = [
        ("bad", plan_rng.randrange(len(bad)))
        if plan_rng.random() < bad_fraction
        else ("good", plan_rng.randrange(len(good)))
        for _ in range(count)
    ]
    generators = [random.Random(seed * 1000 + client) for client in range(clients)]

    async def run():
        import aiohttp  # BentoML's own client library: far less CPU per request than httpx's

        connector = aiohttp.TCPConnector(limit=clients)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def send(index, client):
                kind, which = plan[index]
                route, kwargs = (good if kind == "good" else bad)[which](generators[client])
                try:
                    async with session.post(url + route, **aiohttp_arguments(kwargs)) as answer:
                        await answer.read()
                        return answer.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    return type(error).__name__

            return await drive(clients, count, seconds, send)

    results, wall = asyncio.run(run())
    statuses = {"good": collections.Counter(), "bad": collections.Counter()}
    latencies = []
    for index, status, elapsed in results:
        kind = plan[index][0]
        statuses[kind][status] += 1
        if kind == "good" and status == 200:
            latencies.append(elapsed)
    return {**statuses, "latencies": latencies, "wall": wall, "sent": len(results)}


def describe(counter):
    return ", ".join(f"{status}: {number}" for status, number in sorted(counter.items(), key=str))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="fmnist_two_stage_computed")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=5000, help="per round")
    parser.add_argument("--bad", type=float, default=0.2, help="fraction of hostile requests")
    parser.add_argument("--seconds", type=float, default=900, help="per round, at most")
    parser.add_argument("--rounds", type=int, default=2, help="identical rounds (>= 2)")
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--log", type=Path, default=Path("/tmp/kvae-serve-soak.log"))
    args = parser.parse_args()
    process, url, startup = start_server(args.model, True, args.log)
    rows = []
    try:
        for _ in range(8):  # warm up both routes and both stages
            httpx.post(f"{url}/mean-generate", json={"n": 4}, timeout=120)
            httpx.post(f"{url}/sample-generate", json={"n": 4, "format": "json"}, timeout=120)
        memory = [tree_rss_mib(process.pid)]
        for round_index in range(1, max(2, args.rounds) + 1):
            result = run_round(
                url, args.clients, args.requests, args.bad, args.seconds, args.latent_dim, 0
            )
            memory.append(tree_rss_mib(process.pid))
            rows.append(result)
            print(
                f"round {round_index}: {result['sent']} requests in {result['wall']:.0f} s; "
                f"good {describe(result['good'])}; bad {describe(result['bad'])}",
                flush=True,
            )
    finally:
        stop_server(process)
    tracebacks = args.log.read_text(errors="replace").count("Traceback")
    print(
        f"\nmodel {args.model}, {args.clients} clients, {args.requests} requests per round, "
        f"{args.bad:.0%} hostile, loopback; server log {args.log}\n"
    )
    print(
        "| round | requests | requests/s | good: answers by status | hostile: answers by status "
        "| 5xx | p50 ms | p99 ms | server MiB at start | at end |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for index, result in enumerate(rows):
        fives = sum(
            number
            for counter in (result["good"], result["bad"])
            for status, number in counter.items()
            if not isinstance(status, int) or status >= 500
        )
        milliseconds = np.asarray(result["latencies"]) * 1000
        p50, p99 = (
            (np.percentile(milliseconds, 50), np.percentile(milliseconds, 99))
            if len(milliseconds)
            else (float("nan"), float("nan"))
        )
        print(
            f"| {index + 1} | {result['sent']} | {result['sent'] / result['wall']:.0f} | "
            f"{describe(result['good'])} | {describe(result['bad'])} | {fives} | {p50:.0f} | "
            f"{p99:.0f} | {memory[index]:.0f} | {memory[index + 1]:.0f} |"
        )
    growth = ", ".join(
        f"round {index}: {(memory[index] - memory[index - 1]) / memory[index - 1]:+.1%}"
        for index in range(2, len(memory))
    )
    print(
        f"\nmemory: {memory[0]:.0f} MiB after warm-up, then "
        + ", ".join(f"{value:.0f}" for value in memory[1:])
        + f" after each round; growth over {growth} (target: round 2 < 5 %); "
        f"tracebacks in the server log: {tracebacks}"
    )


if __name__ == "__main__":
    main()
