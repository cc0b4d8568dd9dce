"""Where a served request's time goes: py-spy samples of every server
process under load, folded into the stages of a request.

    python benchmarks/serve_profile.py [--model fmnist_two_stage_computed]
        [--concurrency 1 32] [--seconds 15] [--batching true] [--out /tmp]

Starts `bentoml serve` (as benchmarks/serve_load.py does), drives POST
/mean-generate {"n": 1, "seed": i} at each concurrency for --seconds while
`py-spy record` samples each of the server's processes (100 Hz, busy
threads only), then prints, per process, the share of busy samples whose
stack passes through each stage (a sample counts for the first stage, in
the table's order, that its stack matches): the model's decode, PNG
encoding, the hop between services (BentoML's client), batching,
validation (pydantic, the guard), HTTP (uvicorn, starlette, BentoML's app),
and the rest. With the service's stage timers it also prints the mean
seconds per request of each stage from /metrics. The raw folded stacks stay
in --out for a flame graph. Needs py-spy (`pip install py-spy`) and the
right to ptrace the server (root, or kernel.yama.ptrace_scope 0).
"""

import argparse
import asyncio
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import generate_load, start_server, stop_server  # noqa: E402

STAGES = (
    ("decode", re.compile(r"tensorflow|keras|jax|decode_numpy")),
    ("PNG", re.compile(r"PIL|png_bytes|grid_picture")),
    ("hop", re.compile(r"bentoml/_internal/client|aiohttp/client|call_decoder")),
    ("batching", re.compile(r"marshal|dispatcher|batcher", re.IGNORECASE)),
    ("validation", re.compile(r"pydantic|guard\.py")),
    ("HTTP", re.compile(r"uvicorn|starlette|h11|httptools|http_app|asgi")),
)


def descendants(pid):
    """The process and every process below it (Linux /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def command_line(pid):
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in parts if part)


def short_name(pid):
    """What a server process is: BentoML's supervisor, or a service worker."""
    line = command_line(pid)
    match = re.search(r"--service-name[ =](\S+)", line) or re.search(r"(bentoml serve)", line)
    return f"{pid} {match[1] if match else line[-40:]}"


def fold(path):
    """{stage: samples} of one py-spy raw (folded) file."""
    counts = Counter()
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        stage = next((name for name, pattern in STAGES if pattern.search(stack)), "other")
        counts[stage] += int(number)
    return counts


def stage_seconds(url):
    """{stage: mean seconds per observation} of the service's stage timers
    (the kvae_stage_seconds histogram of /metrics), if it has them."""
    sums, counts = {}, {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        match = re.match(r'kvae_stage_seconds_(sum|count)\{.*stage="([^"]+)".*\} (\S+)', line)
        if match:
            (sums if match[1] == "sum" else counts)[match[2]] = float(match[3])
    return {stage: sums[stage] / counts[stage] for stage in sums if counts.get(stage)}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="fmnist_two_stage_computed")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--batching", choices=("true", "false"), default="true")
    parser.add_argument("--out", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    process, url, startup = start_server(
        args.model, args.batching == "true", args.out / "kvae-serve-profile.log"
    )
    try:
        httpx.post(f"{url}/mean-generate", json={"n": 1}, timeout=120)
        before = stage_seconds(url)
        pids = [pid for pid in descendants(process.pid) if "python" in command_line(pid)]
        for concurrency in args.concurrency:
            recorders = {}
            for pid in pids:
                output = args.out / f"kvae-profile-c{concurrency}-{pid}.txt"
                recorders[pid] = (
                    subprocess.Popen(
                        [
                            "py-spy",
                            "record",
                            "--pid",
                            str(pid),
                            "--rate",
                            "100",
                            "--duration",
                            str(int(args.seconds)),
                            "--format",
                            "raw",
                            "--nonblocking",
                            "--output",
                            str(output),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    ),
                    output,
                )
            time.sleep(1)
            results, wall = asyncio.run(generate_load(url, concurrency, 10**6, args.seconds - 2, 1))
            print(
                f"\n## {concurrency} clients: {len(results) / wall:.1f} requests/s "
                f"(batching {args.batching}, start-up {startup:.1f} s)\n"
            )
            print("| process | busy samples | " + " | ".join(n for n, _ in STAGES) + " | other |")
            print("|---|---|" + "---|" * (len(STAGES) + 1))
            for pid, (recorder, output) in recorders.items():
                recorder.wait()
                counts = fold(output) if output.is_file() else Counter()
                total = sum(counts.values()) or 1
                shares = [counts[name] / total for name, _ in STAGES] + [counts["other"] / total]
                print(
                    f"| {short_name(pid)} | {sum(counts.values())} | "
                    + " | ".join(f"{share:.0%}" for share in shares)
                    + " |"
                )
        after = stage_seconds(url)
        if after:
            print("\nmean seconds per observation (kvae_stage_seconds, whole run):")
            for stage, seconds in after.items():
                print(f"- {stage}: {seconds * 1000:.2f} ms (before the load: {before.get(stage)})")
    finally:
        stop_server(process)


if __name__ == "__main__":
    main()
