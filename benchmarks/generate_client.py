"""Client overhead of rdistill's `openai` backend against a bare AsyncOpenAI + asyncio.gather loop.

Starts `rdistill serve --canned-tokens` (fixed replies after a fixed delay, no model) on
127.0.0.1, then measures in the same run, at concurrency 64 and 256, requests per second of:
- bare: one `AsyncOpenAI`, a semaphore and `asyncio.gather` over every request, nothing kept;
- rdistill: the whole `generate` stage with an `openai` teacher: preflight, retries on, each
  rollout appended to its file as it arrives (the resume cache), progress bar.
Rounds alternate between the two so that load from elsewhere on the machine hits both alike;
each figure is the median of its rounds. Goal: rdistill >= 0.95x the bare loop. The client's
CPU milliseconds per request (this process only; the server runs in another) are printed too:
on a busy machine they vary less than requests per second.

    python benchmarks/generate_client.py [--requests 3000] [--rounds 3] [--tokens 64] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from rdistill.config import GenerateOptions, ProblemsOptions
from rdistill.data.manifest import StageContext
from rdistill.generate import run as generate
from rdistill.problems import run as make_problems

QUIET = StageContext(console=Console(file=io.StringIO()))


def start_server(tokens: int, delay: float) -> tuple[subprocess.Popen, str]:
    """The canned server on a free port of 127.0.0.1, and its base URL."""
    command = [
        sys.executable,
        "-m",
        "rdistill",
        "serve",
        "--canned-tokens",
        str(tokens),
        "--canned-delay-s",
        str(delay),
        "--port",
        "0",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return process, process.stdout.readline().split(" at ")[1].strip()


def make_pool(run_dir: Path, requests: int) -> list[dict]:
    """A problems.parquet of `requests` training problems (one rollout each), and their prompts."""
    from rdistill.generate import training_problems

    half = requests // 2
    options = ProblemsOptions.model_validate({"micro": {"math": half, "code": requests - half, "eval_per_domain": 4}})
    make_problems(options, run_dir, QUIET)
    return [[{"role": "user", "content": problem["prompt"]}] for problem in training_problems(run_dir)]


def timed(work) -> tuple[float, float]:
    """Wall and CPU seconds (this process) of `work()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def bare_loop(url: str, conversations: list, concurrency: int) -> None:
    """A plain AsyncOpenAI + asyncio.gather loop over every conversation."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="none")
    limit = asyncio.Semaphore(concurrency)

    async def one(messages: list) -> None:
        async with limit:
            await client.chat.completions.create(
                model="canned", messages=messages, temperature=0.6, top_p=0.95, max_tokens=512, seed=0
            )

    await asyncio.gather(*(one(messages) for messages in conversations))
    await client.close()


def rdistill_stage(url: str, pool_dir: Path, concurrency: int, requests: int) -> tuple[float, float]:
    """Wall and CPU seconds of the generate stage with an openai teacher, into a fresh run directory."""
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch)
        (run_dir / "problems.parquet").write_bytes((pool_dir / "problems.parquet").read_bytes())
        teacher = {"name": "canned", "backend": "openai", "base_urls": [url], "concurrency": concurrency}
        options = GenerateOptions.model_validate(
            {"teachers": [teacher], "samples_per_problem": 1, "sampling": {"max_tokens": 512}}
        )
        seconds = timed(lambda: generate(options, run_dir, QUIET))
        assert sum(1 for _ in (run_dir / "rollouts" / "canned.jsonl").open()) == requests
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    server, url = start_server(args.tokens, args.delay)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            pool_dir = Path(scratch)
            conversations = make_pool(pool_dir, args.requests)
            results = {}
            for concurrency in (64, 256):
                bare, ours = [], []
                for round_index in range(args.rounds):
                    bare.append(timed(lambda c=concurrency: asyncio.run(bare_loop(url, conversations, c))))
                    ours.append(rdistill_stage(url, pool_dir, concurrency, len(conversations)))
                    bare_rate, our_rate = len(conversations) / bare[-1][0], len(conversations) / ours[-1][0]
                    print(
                        f"concurrency {concurrency} round {round_index + 1}: "
                        f"bare {bare_rate:.1f} req/s, rdistill {our_rate:.1f} req/s",
                        flush=True,
                    )
                results[concurrency] = [
                    statistics.median(len(conversations) / wall for wall, _ in runs) for runs in (bare, ours)
                ]
                results[concurrency] += [
                    statistics.median(1000 * cpu / len(conversations) for _, cpu in runs) for runs in (bare, ours)
                ]
    finally:
        server.kill()
        server.wait()
    print(
        f"requests per round: {len(conversations)}, reply {args.tokens} tokens after {args.delay} s, rounds "
        f"{args.rounds}"
    )
    for concurrency, (_, _, bare_cpu, our_cpu) in results.items():
        print(f"bare_client_cpu_ms_per_request_c{concurrency}: {bare_cpu:.2f}")
        print(f"rdistill_client_cpu_ms_per_request_c{concurrency}: {our_cpu:.2f}")
    for concurrency, (bare, ours, _, _) in results.items():
        print(f"bare_requests_per_s_c{concurrency}: {bare:.1f}")
        print(f"rdistill_requests_per_s_c{concurrency}: {ours:.1f}")
    for concurrency, (bare, ours, _, _) in results.items():
        print(f"ratio_c{concurrency}: {ours / bare:.3f}")


if __name__ == "__main__":
    main()
