"""The OpenAI-compatible app of `rdistill serve`: /v1/models and /v1/chat/completions.

Two responders stand behind it: a local transformers model, whose concurrent requests are
gathered into batches, and canned replies of a fixed length after a fixed delay (no model), for
measuring clients. The text between `<think>` tags is returned in `reasoning_content` (or
`reasoning`), as vLLM's reasoning parsers do.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rdistill.backends import split_think
from rdistill.config import SamplingParams, ServeOptions

DEFAULT_MAX_TOKENS = 512


class ChatRequest(BaseModel):
    """The fields of a chat completion request we honour; others (clients send many) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="The model asked for; must be the one served.")
    messages: list[dict[str, Any]] = Field(description="The conversation.")
    n: int = Field(1, ge=1, le=64, description="Samples to return.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int | None = Field(None, ge=1, description="Most new tokens.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Newer name of max_tokens.")
    seed: int | None = Field(None, description="Seed of the sampling.")
    stop: str | list[str] | None = Field(None, description="Strings that end a completion.")

    def sampling(self) -> SamplingParams:
        """rdistill's sampling settings for this request."""
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        max_tokens = self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS
        return SamplingParams(
            temperature=self.temperature, top_p=self.top_p, max_tokens=max_tokens, seed=self.seed or 0, stop=stop
        )


class ModelResponder:
    """A local transformers model; requests that arrive together are generated in one batch."""

    def __init__(self, model_dir: Path, batch_size: int) -> None:
        from rdistill.backends.hf import load_model

        self.tokenizer, self.model = load_model(model_dir)
        self.batch_size = batch_size
        self.queue: asyncio.Queue | None = None

    async def complete(self, request: ChatRequest) -> list[dict[str, Any]]:
        """`request.n` completions (text, finish_reason, token counts), once a batch has room."""
        if self.queue is None:
            self.queue = asyncio.Queue()
            asyncio.get_running_loop().create_task(self.batcher())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((request, future))
        return await future

    async def batcher(self) -> None:
        """Take what is waiting (up to `batch_size` requests) and generate it, grouped by sampling settings."""
        while True:
            waiting = [await self.queue.get()]
            while len(waiting) < self.batch_size and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
            groups: dict[str, list[tuple[ChatRequest, asyncio.Future]]] = {}
            for request, future in waiting:
                groups.setdefault(request.sampling().model_dump_json(exclude={"seed"}), []).append((request, future))
            for group in groups.values():
                await self.generate_group(group)

    async def generate_group(self, group: list[tuple[ChatRequest, asyncio.Future]]) -> None:
        """One batched generate for requests of equal sampling settings; a request's i-th of n has seed + i."""
        from rdistill.backends.hf import generate_batch

        conversations = [request.messages for request, _ in group for _ in range(request.n)]
        seeds = [request.sampling().seed + index for request, _ in group for index in range(request.n)]
        params = group[0][0].sampling()
        try:
            outputs = await asyncio.to_thread(generate_batch, self.tokenizer, self.model, conversations, params, seeds)
        except Exception as error:  # noqa: BLE001 -- the error goes back to each client as a 500
            for _, future in group:
                future.set_exception(error)
            return
        for request, future in group:
            future.set_result(outputs[: request.n])
            outputs = outputs[request.n :]


class CannedResponder:
    """Answers every request with `tokens` words after `delay_s`: a server as fast as the network allows."""

    def __init__(self, tokens: int, delay_s: float) -> None:
        self.tokens = tokens
        self.delay_s = delay_s
        words = max(self.tokens - 8, 1)
        self.text = "<think>\n" + " ".join(["step"] * words) + "\n</think>\nThe answer is \\boxed{42}."

    async def complete(self, request: ChatRequest) -> list[dict[str, Any]]:
        """`request.n` identical canned completions."""
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        prompt_tokens = sum(len(str(message.get("content", "")).split()) for message in request.messages)
        return [
            {
                "text": self.text,
                "finish_reason": "stop",
                "prompt_tokens": prompt_tokens,
                "completion_tokens": self.tokens,
            }
        ] * request.n


def chat_message(text: str, reasoning_field: str) -> dict[str, Any]:
    """The assistant message, its think block moved to `reasoning_field` unless that is 'none'."""
    if reasoning_field == "none":
        return {"role": "assistant", "content": text}
    reasoning, content = split_think(text)
    return {"role": "assistant", "content": content, reasoning_field: reasoning}


def chat_answer(model: str, outputs: list[dict[str, Any]], reasoning_field: str) -> dict[str, Any]:
    """A chat.completion object in the OpenAI format."""
    completion_tokens = sum(output["completion_tokens"] for output in outputs)
    prompt_tokens = outputs[0]["prompt_tokens"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": index,
                "message": chat_message(output["text"], reasoning_field),
                "finish_reason": output["finish_reason"],
            }
            for index, output in enumerate(outputs)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_error(status: int, message: str, kind: str) -> JSONResponse:
    """An error answer in the OpenAI format."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def build_app(
    responder: ModelResponder | CannedResponder, model_name: str, options: ServeOptions, api_key: str | None
) -> FastAPI:
    """The FastAPI app serving `responder` under `model_name`."""
    app = FastAPI(title="rdistill serve", docs_url=None, redoc_url=None)

    def refused(request: Request) -> JSONResponse | None:
        if api_key is None:
            return None
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(given.encode(), api_key.encode()):
            return None
        return openai_error(401, "invalid API key", "invalid_api_key")

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        if (refusal := refused(request)) is not None:
            return refusal
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "rdistill"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        if (refusal := refused(request)) is not None:
            return refusal
        try:
            chat = ChatRequest.model_validate(json.loads(await request.body()))
        except ValueError as error:
            return openai_error(400, f"invalid request: {error}", "invalid_request_error")
        if options.faults.ignore_n:
            chat.n = 1
        if options.faults.ignore_sampling:
            chat.temperature, chat.top_p, chat.seed = 0.0, 1.0, None
        if chat.model != model_name:
            return openai_error(404, f"The model `{chat.model}` does not exist.", "not_found_error")
        try:
            outputs = await responder.complete(chat)
        except Exception as error:  # noqa: BLE001 -- a generation failure is the server's, reported as a 500
            return openai_error(500, f"generation failed: {error}", "server_error")
        return chat_answer(model_name, outputs, options.reasoning_field)

    return app
