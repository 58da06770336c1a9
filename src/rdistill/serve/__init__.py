"""`rdistill serve`: an OpenAI-compatible HTTP server over a local transformers model.

It lets the micro-world's student (or any checkpoint) stand behind the same `openai` backend as
a real teacher on vLLM, so that backend is tested against a real server; with `canned_tokens`
it answers without a model, for measuring clients; with `faults` it fails on purpose.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from rdistill.backends.openai import secret_from_env
from rdistill.config import ServeOptions
from rdistill.console import quiet_libraries
from rdistill.errors import RecipeError
from rdistill.models import is_gguf, model_folder


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 takes a free one, which we can then print before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise RecipeError(f"--host/--port: cannot listen on {host}:{port} ({error.strerror})") from None
    sock.listen(2048)
    return sock


def make_responder(model_dir: Path | None, options: ServeOptions):
    """The canned responder when `canned_tokens` is set, else the model in `model_dir`."""
    from rdistill.serve.app import CannedResponder, ModelResponder

    if options.canned_tokens is not None:
        return CannedResponder(options.canned_tokens, options.canned_delay_s), options.model_name or "canned"
    if model_dir is None:
        raise RecipeError("MODEL_DIR: missing; pass a transformers model folder or a .gguf file, or --canned-tokens")
    folder = model_folder(model_dir, "MODEL_DIR", announce=lambda line: print(line, flush=True))
    quiet_libraries()
    name = Path(model_dir).stem if is_gguf(model_dir) else Path(model_dir).name
    return ModelResponder(folder, options.batch_size), options.model_name or name


def serve(model_dir: Path | None, options: ServeOptions, announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted; announces the base URL (with the real port) once listening."""
    import uvicorn

    from rdistill.serve.app import build_app
    from rdistill.serve.faults import FaultInjector

    api_key = secret_from_env(options.api_key_env, "--api-key-env")
    responder, model_name = make_responder(model_dir, options)
    app = FaultInjector(build_app(responder, model_name, options, api_key), options.faults)
    sock = bind(options.host, options.port)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    announce(f"serving {model_name!r} at http://{url_host}:{port}/v1")
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30, backlog=2048)
    uvicorn.Server(config).run(sockets=[sock])
