"""Load test of the BentoML service: batching on against batching off.

    python benchmarks/serve_load.py [--model fmnist_two_stage_computed]
        [--concurrency 1 8 32] [--requests 96] [--seconds 60] [--n 1]

For each setting (the batched Decoder service, `--arg batching=true`, and
decoding in the front service, `--arg batching=false`) it starts
`bentoml serve` on a free loopback port, waits for /readyz, records the
memory (RSS summed over the server's processes), then for each concurrency
level sends POST /mean-generate {"n": N, "seed": i} from that many client
threads until --requests requests are answered or --seconds pass, and
records requests/s, p50 and p99 latency and the failures; memory again at
the end. Loopback only; every server is stopped. Prints a Markdown table;
the figure of merit is the ratio between the two settings at the same
concurrency, measured in the same run.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
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
    deadline = time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bentoml serve exited; see {log_path}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
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


def drive(clients, count, seconds, send):
    """Send up to `count` requests from `clients` threads, each with its own
    httpx session, until they are all answered or `seconds` pass.
    `send(session, index, thread)` sends request `index` (0 .. count - 1)
    and returns what to record. Returns ([(index, record, seconds)], wall
    seconds)."""
    results, lock = [], threading.Lock()
    counter = iter(range(count))
    deadline = time.time() + seconds

    def client(thread):
        with httpx.Client(timeout=120) as session:
            while time.time() < deadline:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                start = time.perf_counter()
                record = send(session, index, thread)
                elapsed = time.perf_counter() - start
                with lock:
                    results.append((index, record, elapsed))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def load(url, concurrency, requests, seconds, n):
    """(requests/s, p50 ms, p99 ms, answered, failed) at `concurrency`."""

    def send(session, index, thread):
        return session.post(f"{url}/mean-generate", json={"n": n, "seed": index}).status_code

    results, wall = drive(concurrency, requests, seconds, send)
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


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="fmnist_two_stage_computed")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=96, help="per concurrency level")
    parser.add_argument("--seconds", type=float, default=60, help="per concurrency level")
    parser.add_argument("--n", type=int, default=1, help="images per request")
    parser.add_argument("--logs", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    rows = []
    for batching in (True, False):
        process, url = start_server(
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
    print(
        "| batching | clients | requests/s | p50 ms | p99 ms | answered | failed | "
        "server MiB before | after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for batching, concurrency, rate, p50, p99, answered, failed, before, after in rows:
        print(
            f"| {'on' if batching else 'off'} | {concurrency} | {rate:.1f} | {p50:.0f} | "
            f"{p99:.0f} | {answered} | {failed} | {before:.0f} | {after:.0f} |"
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
