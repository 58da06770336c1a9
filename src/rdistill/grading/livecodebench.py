"""Test cases in LiveCodeBench's released format, decoded without trusting pickle.

`code_generation_lite` stores `public_test_cases` as a JSON string and `private_test_cases` as
base64 of zlib of a pickle of that JSON string. Unpickling runs arbitrary code, so the
unpickler here resolves no globals at all: a payload can only build plain values, and anything
but a string is refused.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from typing import Any

from rdistill.errors import DataError


class _PlainValuesUnpickler(pickle.Unpickler):
    """An unpickler that refuses every class and function reference."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain strings are accepted")


def _as_tests(text: str, where: str) -> list[dict[str, Any]]:
    try:
        cases = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: test cases are not JSON ({exc.msg})") from exc
    if not isinstance(cases, list) or not all(isinstance(c, dict) and "input" in c and "output" in c for c in cases):
        raise DataError(f"{where}: expected a list of objects with 'input' and 'output'")
    return [{"input": c["input"], "output": c["output"], "entry_point": None, "test": None} for c in cases]


def decode_private_tests(blob: str, where: str = "private_test_cases") -> list[dict[str, Any]]:
    """Tests from a `private_test_cases` field (a plain JSON string is accepted too)."""
    if blob.lstrip().startswith("["):
        return _as_tests(blob, where)
    try:
        raw = zlib.decompress(base64.b64decode(blob))
        value = _PlainValuesUnpickler(io.BytesIO(raw)).load()
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError) as exc:
        raise DataError(f"{where}: cannot decode ({exc})") from exc
    if not isinstance(value, str):
        raise DataError(f"{where}: decoded to {type(value).__name__}, expected a JSON string")
    return _as_tests(value, where)


def problem_tests(row: dict[str, Any], where: str = "row") -> list[dict[str, Any]]:
    """Every stdin/stdout test of a LiveCodeBench row: public, then private."""
    tests = _as_tests(row["public_test_cases"], f"{where}: public_test_cases")
    if row.get("private_test_cases"):
        tests += decode_private_tests(row["private_test_cases"], f"{where}: private_test_cases")
    return tests
