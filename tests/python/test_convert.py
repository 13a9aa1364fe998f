"""hearth.convert and hearth.quantize on the tiny Hugging Face fixtures of
tests/data/convert (scripts/fixtures/make_convert_fixtures.py); the C++ test
tests/capi/convert_test.cc covers every architecture and type in depth."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hearth

from conftest import ROOT

CONVERT = ROOT / "tests" / "data" / "convert"


@pytest.mark.parametrize("name", ["llama-bpe", "qwen2", "gemma3"])
def test_convert_matches_transformers(name, tmp_path):
    out = hearth.convert(CONVERT / name, tmp_path / "m.gguf", type="f32")
    ref = json.loads((CONVERT / name / "reference.json").read_text())
    rows = np.fromfile(CONVERT / name / "logits.f32", dtype="<f4").reshape(-1, ref["n_vocab"])
    model = hearth.Model(out, device="cpu", threads=2)
    assert model.tokenize(ref["prompt"]) == ref["ids"]
    with model.session() as s:
        got = []
        for t in ref["ids"]:
            s.feed(np.array([t], dtype=np.int32))
            got.append(s.logits())
    err = np.max(np.abs(np.stack(got) - rows)) / np.max(np.abs(rows))
    assert err <= 1e-4


def test_progress_and_stop(tmp_path):
    seen = []
    hearth.convert(CONVERT / "qwen2", tmp_path / "a.gguf", type="q8_0",
                   progress=lambda i, n, t: seen.append((i, n, t)))
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] - 1
    with pytest.raises(hearth.CancelledError):
        hearth.convert(CONVERT / "qwen2", tmp_path / "b.gguf", progress=lambda i, n, t: False)
    assert not (tmp_path / "b.gguf").exists()
    with pytest.raises(ZeroDivisionError):
        hearth.convert(CONVERT / "qwen2", tmp_path / "c.gguf", progress=lambda i, n, t: 1 / 0)
    q = hearth.quantize(tmp_path / "a.gguf", tmp_path / "d.gguf", type="q8_0")
    assert q.read_bytes() == (tmp_path / "a.gguf").read_bytes()


def test_refusals_name_file_and_key(tmp_path):
    with pytest.raises(hearth.NotFoundError, match="config.json"):
        hearth.convert(tmp_path, tmp_path / "x.gguf")
    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(hearth.UnimplementedError, match="'architectures'.*BertModel"):
        hearth.convert(tmp_path, tmp_path / "x.gguf")
