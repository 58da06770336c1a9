"""File IO with the two guarantees every stage relies on: atomic writes and tolerant reads.

A reader never sees a half-written file (we write to a temporary name and rename), and an
append-only JSONL file whose last line was torn by a kill is read up to that line.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from rdistill.errors import DataError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    """Write rows atomically as a Parquet file."""
    # pyarrow is imported where it is used: it costs a second or two at start, and `rdistill --help` needs none of it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows) if rows else pa.table({})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: Path) -> list[dict[str, Any]]:
    """Read a Parquet file into a list of row dicts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically, pretty-printed so people can read run directories."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """Write rows atomically as JSON Lines."""
    with atomic_path(path) as tmp, tmp.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


class JsonlAppender:
    """Appends rows to a JSON Lines file one line at a time, flushed at once, synced to disk every second.

    A flushed line survives a killed process (it is in the kernel's cache); the periodic fsync
    bounds what a power cut can take, without paying a disk sync per row.
    """

    SYNC_EVERY_S = 1.0

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: TextIO = path.open("a", encoding="utf-8")
        self.synced = time.monotonic()

    def write(self, row: dict[str, Any]) -> None:
        """Append one row."""
        self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.handle.flush()
        if time.monotonic() - self.synced > self.SYNC_EVERY_S:
            os.fsync(self.handle.fileno())
            self.synced = time.monotonic()

    def close(self) -> None:
        """Sync and close the file."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


def read_jsonl(path: Path, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    """Read JSON Lines; a malformed line is an error naming file and line.

    With `tolerate_torn_tail`, an unterminated last line (a write cut by a kill) is dropped
    and cut off the file, so that the next append starts on a clean line.
    """
    return [row for _, row in read_jsonl_lines(path, tolerate_torn_tail)]


def read_jsonl_lines(path: Path, tolerate_torn_tail: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(1-based line number, row) of every non-blank line, so that a later field error can name its line.

    Every line must be a JSON object and the file UTF-8: anything else is a DataError naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'a directory, not a file' if path.is_dir() else 'file not found'}")
    raw = path.read_bytes()
    if tolerate_torn_tail and raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        with path.open("r+b") as handle:
            handle.truncate(cut)
        raw = raw[:cut]
    rows = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{number}: not UTF-8 text (byte {exc.start} of the line)") from exc
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def file_hash(path: Path) -> str:
    """Content hash of a file, or of every file under a directory (names included)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def key_seed(*parts: object) -> int:
    """A 32-bit seed that depends only on the given key, so a rerun samples the same thing for it."""
    digest = hashlib.sha256("/".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def stable_id(*parts: str) -> str:
    """A short id that depends only on the given strings (source and text, say)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def problem_record(
    source: str,
    domain: str,
    identifier: Any,
    prompt: str,
    answer: str | None,
    tests: list | None,
    difficulty: float | None,
    split: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """A problems.parquet record (docs/schema.md), for benchmark and pool loaders alike: the dataset's own
    id is kept when it has one, else one is derived from the source, domain and prompt."""
    return {
        "id": str(identifier) if identifier not in (None, "") else stable_id(source, domain, prompt),
        "domain": domain,
        "prompt": prompt,
        "answer": answer,
        "tests": tests,
        "difficulty": difficulty,
        "source": source,
        "split": split,
        "meta": json.dumps(meta),
    }
