"""The `openai` backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, hosted APIs).

Requests go out through the `openai` SDK's `AsyncOpenAI` (its own retries switched off), at most
`concurrency` at a time, spread over the teacher's `base_urls`. Retries, budgets and endpoint
rotation are ours because the SDK's retry loop knows one endpoint only, has no run-wide budget
and cannot turn an exhausted request into an error rollout. The API key is read from the
environment variable the recipe names, and scrubbed from every message we raise or record.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import itertools
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rdistill.backends.interface import Completion, Request, join_think, open_think, split_think
from rdistill.config import ModelSpec, RetryOptions, SamplingParams
from rdistill.errors import BackendError, RecipeError

FAILURES_BEFORE_COOLDOWN = 3
FATAL_STATUSES = {400, 401, 403, 404, 405, 413, 422}
MIN_RUN_RETRIES = 100
PREFLIGHT_TIMEOUT_S = 30.0


def secret_from_env(variable: str | None, where: str) -> str | None:
    """The key held by the environment variable an option names (none when it names none)."""
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key:
        raise RecipeError(f"{where}: the environment variable {variable} is not set")
    return key


@dataclass
class Endpoint:
    """One base URL, its client and its health."""

    url: str
    client: Any
    in_flight: int = 0
    failures_in_a_row: int = 0
    out_until: float = 0.0


class Rotation:
    """Spreads requests over endpoints by load; an endpoint failing 3 times in a row sits out a cooldown."""

    def __init__(self, endpoints: list[Endpoint], cooldown_s: float) -> None:
        self.endpoints = endpoints
        self.cooldown_s = cooldown_s
        self.last_reached = time.monotonic()

    def pick(self) -> Endpoint:
        """The least loaded endpoint in rotation; if all sit out, the one whose cooldown ends first."""
        now = time.monotonic()
        live = [endpoint for endpoint in self.endpoints if endpoint.out_until <= now]
        if not live:
            return min(self.endpoints, key=lambda endpoint: endpoint.out_until)
        return min(live, key=lambda endpoint: endpoint.in_flight)

    def reached(self, endpoint: Endpoint, healthy: bool) -> None:
        """Record an answer from `endpoint`; a healthy one puts it back in rotation."""
        self.last_reached = time.monotonic()
        if healthy:
            endpoint.failures_in_a_row, endpoint.out_until = 0, 0.0
        else:
            self.failed(endpoint)

    def failed(self, endpoint: Endpoint) -> None:
        """Count a failure of `endpoint`; the third in a row takes it out of rotation."""
        endpoint.failures_in_a_row += 1
        if endpoint.failures_in_a_row >= FAILURES_BEFORE_COOLDOWN:
            endpoint.out_until = time.monotonic() + self.cooldown_s


@dataclass
class Failure:
    """A retryable failure of one attempt."""

    reason: str
    retry_after_s: float | None = None


def retry_after(headers: Any) -> float | None:
    """Seconds a server asks us to wait: `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    if headers is None:
        return None
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        date = email.utils.parsedate_to_datetime(value)
        return max(0.0, date.timestamp() - time.time()) if date else None


def backoff_s(options: RetryOptions, retry: int, asked: float | None) -> float:
    """Exponential backoff with jitter (half fixed, half random), never shorter than the server asked."""
    ceiling = min(options.backoff_max_s, options.backoff_s * 2 ** (retry - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, asked or 0.0)


@dataclass
class RunBudget:
    """Retries left to the whole run."""

    left: int

    @classmethod
    def for_run(cls, options: RetryOptions, requests: int) -> RunBudget:
        """`run_retry_share` of the run's requests, at least MIN_RUN_RETRIES."""
        return cls(max(MIN_RUN_RETRIES, math.ceil(options.run_retry_share * requests)))


@dataclass
class Group:
    """Requests sent together with `n`: samples of one prompt."""

    requests: list[Request]
    retries: int = 0
    started: float = field(default_factory=time.perf_counter)


def request_groups(requests: Sequence[Request], per_request: int) -> Iterator[Group]:
    """Consecutive requests of one problem, in chunks of `per_request` (one request each when 1)."""
    for _, same_problem in itertools.groupby(
        requests, key=lambda request: (request.problem["id"], json.dumps(request.messages))
    ):
        batch = list(same_problem)
        for start in range(0, len(batch), per_request):
            yield Group(batch[start : start + per_request])


def split_reasoning(message: Any) -> tuple[str, str | None, str]:
    """(raw text, reasoning, response) of a chat message.

    A reasoning parser's `reasoning_content` (vLLM, DeepSeek) or `reasoning` field wins; otherwise
    the reasoning is what stands in `<think>` tags in the content. A content with `</think>` but no
    opening tag comes from templates that put `<think>` in the prompt (DeepSeek-R1, Qwen3).
    """
    content = message.content or ""
    reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
    if isinstance(reasoning, str) and reasoning:
        return join_think(reasoning, content), reasoning.strip(), content.strip()
    content = open_think(content)
    reasoning_text, response = split_think(content)
    return content, reasoning_text, response


def finish_reason(reason: str | None) -> tuple[str, str | None]:
    """The rollout's finish_reason (stop, length, error) and an error for reasons we do not keep."""
    if reason in (None, "stop", "eos"):
        return "stop", None
    if reason == "length":
        return "length", None
    return "error", f"finish_reason {reason}"


def completion_tokens_share(total: int | None, texts: list[str], index: int) -> int | None:
    """A choice's share of the completion tokens of an `n` > 1 answer, which reports only their sum.

    Servers give no per-choice count, so the sum is split in proportion to the characters of each.
    """
    if total is None or len(texts) == 1:
        return total
    characters = sum(len(text) for text in texts) or len(texts)
    return round(total * (len(texts[index]) or 1) / characters)


class OpenAIBackend:
    """Chat completions from OpenAI-compatible endpoints, with bounded concurrency and retries."""

    def __init__(self, spec: ModelSpec, where: str) -> None:
        if not spec.base_urls:
            raise RecipeError(
                f"{where}.base_urls: the openai backend needs at least one endpoint, such as http://127.0.0.1:8000/v1"
            )
        self.spec = spec
        self.where = where
        self.model = spec.model or spec.name
        self.api_key = secret_from_env(spec.api_key_env, f"{where}.api_key_env")
        self.one_per_request = spec.samples_per_request == 1

    def check_endpoints(self) -> None:
        """The preflight alone, before a run: every endpoint listed for its models, a BackendError if none serves."""

        async def listing() -> None:
            endpoints = [Endpoint(url, self.make_client(url)) for url in self.spec.base_urls]
            try:
                await self.preflight(Rotation(endpoints, self.spec.retry.endpoint_cooldown_s))
            finally:
                await asyncio.gather(*(endpoint.client.close() for endpoint in endpoints), return_exceptions=True)

        asyncio.run(listing())

    def scrub(self, text: str) -> str:
        """`text` with the API key cut out, for anything that may be printed or written."""
        return text.replace(self.api_key, "[api key]") if self.api_key else text

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, on_result: Callable[[Completion], None]
    ) -> None:
        """Complete every request, calling `on_result` as each one finishes (from the thread running our event loop)."""
        if not requests:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.run_all(requests, params, on_result))
            return
        # Called from inside an event loop (a notebook): run ours on a thread of its own.
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, self.run_all(requests, params, on_result)).result()

    def close(self) -> None:
        """Nothing is held between calls: clients live for one `generate`."""

    def make_client(self, url: str) -> Any:
        """An `AsyncOpenAI` for one endpoint, with its retries off and a pool as large as our concurrency."""
        import httpx2
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        pool = httpx2.Limits(max_connections=self.spec.concurrency, max_keepalive_connections=self.spec.concurrency)
        return AsyncOpenAI(
            base_url=url,
            api_key=self.api_key or "none",
            max_retries=0,
            timeout=self.spec.timeout_s,
            http_client=DefaultAsyncHttpxClient(limits=pool, timeout=self.spec.timeout_s),
        )

    async def run_all(
        self, requests: Sequence[Request], params: SamplingParams, on_result: Callable[[Completion], None]
    ) -> None:
        """Workers pull request groups from one iterator until it is empty; a fatal error stops them all."""
        endpoints = [Endpoint(url, self.make_client(url)) for url in self.spec.base_urls]
        try:
            rotation = Rotation(endpoints, self.spec.retry.endpoint_cooldown_s)
            await self.preflight(rotation)
            budget = RunBudget.for_run(self.spec.retry, len(requests))
            groups = request_groups(requests, self.spec.samples_per_request)
            workers = [
                asyncio.create_task(self.worker(groups, rotation, budget, params, on_result))
                for _ in range(self.spec.concurrency)
            ]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        finally:
            await asyncio.gather(*(endpoint.client.close() for endpoint in endpoints), return_exceptions=True)

    async def preflight(self, rotation: Rotation) -> None:
        """Ask every endpoint for its models: a refused key, a wrong URL or an unknown model fails now."""
        import openai

        reachable, last_error = 0, ""
        for endpoint in rotation.endpoints:
            try:
                listing = await endpoint.client.models.list(timeout=min(PREFLIGHT_TIMEOUT_S, self.spec.timeout_s))
            except openai.APIStatusError as error:
                raise BackendError(self.describe(endpoint, error, "listing models")) from None
            except (openai.APIConnectionError, json.JSONDecodeError) as error:
                endpoint.out_until = time.monotonic() + rotation.cooldown_s
                last_error = f"{endpoint.url}: {type(error).__name__}: {self.scrub(str(error))}"
                continue
            served = [model.id for model in listing.data]
            if served and self.model not in served:
                listing_text = ", ".join(served[:20])
                raise BackendError(
                    f"{self.where}.model: {endpoint.url} does not serve {self.model!r} (it serves: {listing_text})"
                )
            reachable += 1
        if not reachable:
            raise BackendError(f"{self.where}.base_urls: no endpoint reachable ({last_error})")

    def describe(self, endpoint: Endpoint, error: Any, doing: str) -> str:
        """A fatal HTTP error as a message naming recipe key, endpoint, model and status."""
        hint = {
            401: " (check the API key in the environment variable named by api_key_env)",
            404: " (is the URL the server's /v1 base, and the model name right?)",
        }
        body = self.scrub(str(getattr(error, "message", error)))[:500]
        status = error.status_code
        return (
            f"{self.where}: {endpoint.url} answered HTTP {status} {doing} for model "
            f"{self.model!r}{hint.get(status, '')}: {body}"
        )

    async def worker(
        self,
        groups: Iterator[Group],
        rotation: Rotation,
        budget: RunBudget,
        params: SamplingParams,
        on_result: Callable[[Completion], None],
    ) -> None:
        """Complete groups one after another until none is left."""
        for group in groups:
            await self.complete(group, rotation, budget, params, on_result)

    async def complete(
        self,
        group: Group,
        rotation: Rotation,
        budget: RunBudget,
        params: SamplingParams,
        on_result: Callable[[Completion], None],
    ) -> None:
        """Send a group until every request in it has a completion or its retries are spent."""
        remaining = list(group.requests)
        while remaining:
            batch = remaining if not self.one_per_request else remaining[:1]
            endpoint = rotation.pick()
            endpoint.in_flight += 1
            started = time.perf_counter()
            try:
                response = await self.send(endpoint, batch, params)
                failure = None if response.choices else Failure("an answer without choices")
            except Exception as error:  # noqa: BLE001 -- classify() re-raises what is not a server fault
                response, failure = None, self.classify(error, endpoint, rotation)
            finally:
                endpoint.in_flight -= 1
            if failure is None:
                rotation.reached(endpoint, healthy=True)
                done = self.deliver(response, batch, time.perf_counter() - started, group.retries, on_result)
                if done < len(batch):
                    self.one_per_request = True  # the server ignores n: ask for the rest one by one
                remaining = remaining[done:]
                continue
            if group.retries >= self.spec.retry.max_retries:
                for request in remaining:
                    on_result(self.error_completion(request, failure, group))
                return
            if budget.left <= 0:
                raise BackendError(
                    f"{self.where}.retry.run_retry_share: the run's retry budget is spent; the endpoints fail "
                    f"too often "
                    f"(last: {failure.reason}). Rollouts written so far are kept; rerun to resume."
                )
            budget.left -= 1
            group.retries += 1
            await asyncio.sleep(backoff_s(self.spec.retry, group.retries, failure.retry_after_s))

    async def send(self, endpoint: Endpoint, batch: list[Request], params: SamplingParams) -> Any:
        """One chat completion request for `batch` (samples of one prompt: `n` = its size)."""
        first = batch[0]
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": first.messages,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": first.seed,
        }
        if len(batch) > 1:
            arguments["n"] = len(batch)
        if params.stop:
            arguments["stop"] = params.stop
        if self.spec.extra_body:
            arguments["extra_body"] = self.spec.extra_body
        return await endpoint.client.chat.completions.create(**arguments)

    def classify(self, error: Exception, endpoint: Endpoint, rotation: Rotation) -> Failure:
        """A retryable Failure for server faults; fatal statuses and long unreachability raise BackendError."""
        import openai

        if isinstance(error, openai.APIStatusError):
            if error.status_code in FATAL_STATUSES:
                raise BackendError(self.describe(endpoint, error, "to a chat completion")) from None
            rate_limited = error.status_code == 429
            rotation.reached(endpoint, healthy=rate_limited)
            return Failure(f"HTTP {error.status_code} from {endpoint.url}", retry_after(error.response.headers))
        if isinstance(error, json.JSONDecodeError | openai.APIResponseValidationError):
            rotation.reached(endpoint, healthy=False)
            return Failure(f"a malformed answer from {endpoint.url}")
        if isinstance(error, openai.APITimeoutError):
            rotation.failed(endpoint)
            return Failure(f"no answer from {endpoint.url} within {self.spec.timeout_s:g} s")
        if isinstance(error, openai.APIConnectionError):
            rotation.failed(endpoint)
            silent_for = time.monotonic() - rotation.last_reached
            if silent_for > self.spec.retry.unreachable_after_s:
                urls = ", ".join(e.url for e in rotation.endpoints)
                raise BackendError(
                    f"{self.where}.base_urls: no endpoint could be reached for {silent_for:.0f} s ({urls}; "
                    f"last: {self.scrub(str(error.__cause__ or error))}). "
                    "Rollouts written so far are kept; rerun to resume."
                ) from None
            return Failure(f"connection to {endpoint.url} failed ({self.scrub(str(error.__cause__ or error))})")
        raise error

    def deliver(
        self, response: Any, batch: list[Request], latency: float, retries: int, on_result: Callable[[Completion], None]
    ) -> int:
        """Hand each choice of `response` to `on_result` as its request's completion; returns how many."""
        choices = sorted(response.choices, key=lambda choice: choice.index)[: len(batch)]
        usage = response.usage
        splits = [split_reasoning(choice.message) for choice in choices]
        for index, (request, choice, (text, reasoning, answer)) in enumerate(zip(batch, choices, splits, strict=False)):
            reason, error = finish_reason(choice.finish_reason)
            on_result(
                Completion(
                    request=request,
                    text=text,
                    reasoning=reasoning,
                    response=answer,
                    finish_reason=reason,
                    prompt_tokens=usage.prompt_tokens if usage else None,
                    completion_tokens=completion_tokens_share(
                        usage.completion_tokens if usage else None, [s[0] for s in splits], index
                    ),
                    latency_s=round(latency, 6),
                    error=error,
                    retries=retries,
                )
            )
        return len(choices)

    def error_completion(self, request: Request, failure: Failure, group: Group) -> Completion:
        """The rollout of a request whose retries are spent: finish_reason 'error' and why."""
        return Completion(
            request=request,
            text="",
            reasoning=None,
            response="",
            finish_reason="error",
            latency_s=round(time.perf_counter() - group.started, 6),
            error=f"gave up after {group.retries} retries: {failure.reason}",
            retries=group.retries,
        )
