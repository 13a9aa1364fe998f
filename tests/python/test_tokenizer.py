"""Tokenizer round trips on the shared tokenizer test strings, and the
reference token ids of the fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hearth

from conftest import MODELS, SHARED_TOKENIZERS

SEPARATOR = "\n__ggml_vocab_test__\n"


def vector_strings() -> list[str]:
    """Every test string of the shared .inp files (strings separated by lines
    "__ggml_vocab_test__"), deduplicated, in file order."""
    files = sorted(SHARED_TOKENIZERS.glob("*.inp"))
    if not files:
        pytest.skip(f"no tokenizer vectors in {SHARED_TOKENIZERS}")
    out: list[str] = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        parts = text.split(SEPARATOR)
        if text.endswith(SEPARATOR):
            parts = parts[:-1]
        out.extend(p for p in parts if p not in out)
    return out


def test_vector_strings_parse():
    strings = vector_strings()
    assert len(strings) >= 40
    assert "Hello world" in strings and "" in strings and "\n\n" in strings


def test_round_trip_on_shared_strings(model):
    failures = []
    for text in vector_strings():
        ids = model.tokenize(text, add_special=False)
        assert all(0 <= i < model.n_vocab for i in ids)
        back = model.detokenize(ids)
        if back != text:
            failures.append((text, ids, back))
    assert not failures, f"{len(failures)} strings did not round-trip, first: {failures[0]!r}"


def test_add_special_adds_bos_where_the_model_asks(llama, qwen2):
    assert llama.tokenize("Hello")[0] == llama.info.token_bos
    assert llama.tokenize("Hello") == [llama.info.token_bos] + llama.tokenize(
        "Hello", add_special=False)
    # qwen2's GGUF says add_bos_token = false.
    assert qwen2.tokenize("Hello") == qwen2.tokenize("Hello", add_special=False)


@pytest.mark.parametrize("name", ["tiny-llama-f32", "tiny-qwen2-f32"])
def test_reference_token_ids(name, request):
    model = request.getfixturevalue("llama" if "llama" in name else "qwen2")
    ref = json.loads((MODELS / f"{name}.ref.json").read_text())
    for p in ref["prompts"]:
        # tokens = [bos] + encode(text) (docs/fixtures.md)
        assert model.tokenize(p["text"], add_special=False) == p["tokens"][1:], p["text"]


def test_detokenize_accepts_numpy_and_renders_special(llama):
    ids = llama.tokenize("Hello")
    arr = np.array(ids, dtype=np.int64)
    assert llama.detokenize(arr) == "Hello"
    assert llama.detokenize(arr.astype(np.uint16)) == "Hello"
    assert llama.detokenize(ids[1:]) == "Hello"  # BOS is skipped
    assert llama.detokenize(ids, render_special=True).startswith("<s>")
    assert llama.detokenize([]) == ""
    assert llama.tokenize("") == [llama.info.token_bos]


def test_token_bytes_and_eog(llama, qwen2):
    ids = llama.tokenize("Hello", add_special=False)
    assert b"".join(llama.token_bytes(i) for i in ids).replace(b"\xe2\x96\x81", b" ").strip() \
        == b"Hello"
    assert llama.is_eog(llama.info.token_eos)
    assert not llama.is_eog(ids[0])
    assert not llama.is_eog(10**6) and not llama.is_eog(-1)
    with pytest.raises(hearth.OutOfRangeError):
        llama.token_bytes(llama.n_vocab)
    with pytest.raises(IndexError):
        llama.token_bytes(-1)
