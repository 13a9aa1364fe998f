"""Logits and log-probabilities against the reference fixtures
(transformers, float64, on the same weights; docs/fixtures.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hearth

from conftest import MODELS

NAMES = ["tiny-llama-f32", "tiny-qwen2-f32"]


def load_reference(name: str):
    ref = json.loads((MODELS / f"{name}.ref.json").read_text())
    n_vocab = ref["n_vocab"]
    for p in ref["prompts"]:
        rows = np.fromfile(MODELS / p["logits"], dtype="<f4").reshape(-1, n_vocab)
        assert rows.shape[0] == len(p["tokens"])
        yield p, rows, ref["tolerance"]["rel"]


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """The fixtures' metric: max|got - ref| / max|ref|."""
    return float(np.max(np.abs(got.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def model_for(name, request) -> hearth.Model:
    return request.getfixturevalue("llama" if "llama" in name else "qwen2")


@pytest.mark.parametrize("name", NAMES)
def test_last_position_logits_match_reference(name, request):
    model = model_for(name, request)
    for p, rows, tol in load_reference(name):
        with model.session() as s:
            s.feed(p["tokens"])
            logits = s.logits()
        assert logits.dtype == np.float32 and logits.shape == (model.n_vocab,)
        err = rel_error(logits, rows[-1])
        assert err <= tol, f"{p['text']!r}: rel error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("name", NAMES)
def test_every_position_token_by_token(name, request):
    model = model_for(name, request)
    for p, rows, tol in load_reference(name):
        with model.session() as s:
            got = []
            for t in p["tokens"]:
                s.feed(np.array([t], dtype=np.int32))
                got.append(s.logits())
        err = rel_error(np.stack(got), rows)
        assert err <= tol, f"{p['text']!r}: rel error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("name", NAMES)
def test_score_matches_reference_log_softmax(name, request):
    model = model_for(name, request)
    for p, rows, tol in load_reference(name):
        tokens = p["tokens"]
        ref = rows.astype(np.float64)
        ref_lp = ref - ref.max(axis=1, keepdims=True)
        ref_lp -= np.log(np.exp(ref_lp).sum(axis=1, keepdims=True))
        want = np.array([ref_lp[i, tokens[i + 1]] for i in range(len(tokens) - 1)])
        with model.session() as s:
            got = s.score(tokens)
            assert got.dtype == np.float32 and got.shape == (len(tokens) - 1,)
            assert s.n_past == len(tokens)
            last = s.logits()
        # A log-softmax moves by at most 2 * max|logit error|.
        bound = 2 * tol * np.max(np.abs(ref)) + 1e-6
        assert np.max(np.abs(got - want), initial=0.0) <= bound
        assert rel_error(last, rows[-1]) <= tol


def test_second_session_gives_identical_logits(model):
    ids = model.tokenize("The quick brown fox jumps over the lazy dog")
    with model.session() as a, model.session() as b:
        a.feed(ids)
        b.feed(ids[:3])
        b.feed(ids[3:])  # in two chunks
        la, lb = a.logits(), b.logits()
    np.testing.assert_allclose(la, lb, rtol=0, atol=1e-4 * np.max(np.abs(la)))


def test_logits_are_a_copy(llama):
    with llama.session() as s:
        s.feed([1, 2, 3])
        first = s.logits()
        kept = first.copy()
        first[:] = 0
        s.feed([4])
        np.testing.assert_array_equal(kept[:1] * 0, first[:1])
        assert not np.array_equal(s.logits(), kept)


def test_logits_before_feed(llama):
    with llama.session() as s:
        with pytest.raises(hearth.FailedPreconditionError):
            s.logits()


def test_sampler_greedy_loop_matches_generate(llama):
    want = llama.generate("Hello", max_tokens=8, temperature=0)
    sampler = hearth.Sampler(temperature=0)
    ids = []
    with llama.session() as s:
        s.feed(llama.tokenize("Hello"))
        for _ in range(8):
            t = sampler.sample(s.logits())
            sampler.accept(t)
            ids.append(t)
            s.feed([t])
    assert llama.detokenize(ids) == want
    with pytest.raises(hearth.InvalidArgumentError):
        hearth.Sampler(top_p=0)
    with pytest.raises(TypeError):
        hearth.Sampler(nonsense=1)
