"""Fixtures of the Python test suite (tests/python).

Run against the build tree (no pip install needed):

    PYTHONPATH=build/python python3 -m pytest -q tests/python

The models are the tiny random-weight fixtures of tests/data/models (see
docs/fixtures.md); the tokenizer strings come from <repo>/../shared/data.
"""

from __future__ import annotations

import faulthandler
import pathlib
import sys

import pytest

import hearth

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "data" / "models"
SHARED_TOKENIZERS = ROOT.parent / "shared" / "data" / "tokenizers"

LLAMA = MODELS / "tiny-llama-f32.gguf"
QWEN2 = MODELS / "tiny-qwen2-f32.gguf"

# A hang (a deadlocked stream) must fail the run, not stall CI.
WATCHDOG_SECONDS = 120


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def llama() -> hearth.Model:
    return hearth.Model(LLAMA, device="cpu", threads=2)


@pytest.fixture(scope="session")
def qwen2() -> hearth.Model:
    return hearth.Model(QWEN2, device="cpu", threads=2)


@pytest.fixture(scope="session", params=["llama", "qwen2"])
def model(request) -> hearth.Model:
    """Each test using it runs once per tiny model."""
    return request.getfixturevalue(request.param)
