"""Generation: determinism, streaming, stop conditions, sessions."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import hearth

PROMPT = "Once upon a time"


def test_greedy_is_deterministic(model):
    a = model.generate(PROMPT, max_tokens=16, temperature=0)
    b = model.generate(PROMPT, max_tokens=16, temperature=0)
    assert a == b and a != ""


def test_same_seed_same_text_other_seed_other_text(model):
    kw = dict(max_tokens=24, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0)
    a = model.generate(PROMPT, seed=1, **kw)
    assert model.generate(PROMPT, seed=1, **kw) == a
    assert model.generate(PROMPT, sampling=hearth.SamplingParams(seed=1, **{
        k: v for k, v in kw.items() if k != "max_tokens"}), max_tokens=24) == a
    others = {model.generate(PROMPT, seed=s, **kw) for s in (2, 3, 4)}
    assert others != {a}, "three other seeds all gave the same text as seed 1"


def test_greedy_follows_the_reference_tokens(llama):
    # tiny-llama-f32.ref.json: greedy after "Hello" (EOS does not occur).
    assert llama.generate("Hello", max_tokens=8, temperature=0) == "mentv A are8al\x1aF"
    r = None
    with llama.session() as s:
        s.generate("Hello", max_tokens=8, temperature=0)
        r = s.last_result
    assert r.n_prompt_tokens == 6 and r.n_generated_tokens == 8
    assert r.stop_reason == hearth.StopReason.MAX_TOKENS


@pytest.mark.parametrize("kw", [
    dict(temperature=0),
    dict(temperature=0.9, top_p=0.9, seed=1),
    dict(temperature=1.2, top_k=5, repeat_penalty=1.3, presence_penalty=0.5,
         frequency_penalty=0.2, penalty_last_n=8, min_p=0.01, seed=123),
])
def test_stream_equals_generate(model, kw):
    full = model.generate(PROMPT, max_tokens=32, **kw)
    pieces = list(model.stream(PROMPT, max_tokens=32, **kw))
    assert "".join(pieces) == full
    assert all(isinstance(p, str) and p for p in pieces)


def test_max_tokens_zero_and_none(llama):
    assert llama.generate(PROMPT, max_tokens=0) == ""
    with llama.session(ctx=64) as s:
        s.generate(PROMPT, max_tokens=None, temperature=0)
        assert s.last_result.stop_reason in (hearth.StopReason.CONTEXT_FULL,
                                             hearth.StopReason.EOG)
        if s.last_result.stop_reason == hearth.StopReason.CONTEXT_FULL:
            assert s.n_past == s.n_ctx == 64


def test_stop_string_ends_generation(llama):
    full = llama.generate("Hello", max_tokens=8, temperature=0)  # "mentv A are8al\x1aF"
    with llama.session() as s:
        text = s.generate("Hello", max_tokens=8, temperature=0, stop=[" are", "zzz"])
        assert text == full[: full.index(" are")]
        assert s.last_result.stop_reason == hearth.StopReason.STRING
    assert llama.generate("Hello", max_tokens=8, temperature=0, stop=" A") == "mentv"
    assert "".join(llama.stream("Hello", max_tokens=8, temperature=0, stop=" A")) == "mentv"


def test_session_multi_turn(model):
    with model.session(ctx=256) as s:
        assert s.n_past == 0 and s.n_ctx == 256
        t1 = s.generate(PROMPT, max_tokens=6, temperature=0)
        r1 = s.last_result
        assert s.n_past == r1.n_prompt_tokens + r1.n_generated_tokens
        n1 = s.n_past
        t2 = "".join(s.stream(" and then", max_tokens=6, temperature=0))
        r2 = s.last_result
        assert s.n_past == n1 + r2.n_prompt_tokens + r2.n_generated_tokens
        # The second turn saw the first: it differs from a fresh start.
        fresh = model.generate(" and then", max_tokens=6, temperature=0, add_special=False)
        assert t2 != fresh or r2.n_generated_tokens == 0
        s.reset()
        assert s.n_past == 0
        assert s.generate(PROMPT, max_tokens=6, temperature=0) == t1


def test_early_break_stops_generation(llama):
    with llama.session(ctx=512) as s:
        got = []
        for piece in s.stream(PROMPT, max_tokens=None, temperature=0):
            got.append(piece)
            if len(got) == 3:
                break
        r = s.last_result
        assert r.stop_reason == hearth.StopReason.CALLBACK
        assert r.n_generated_tokens < 64, "generation went on after the reader left"
        # The token whose text was refused may or may not be in the context.
        assert r.n_prompt_tokens + 3 <= s.n_past <= r.n_prompt_tokens + r.n_generated_tokens
        # The session is free again at once.
        assert s.generate(" more", max_tokens=2, temperature=0) is not None


def test_model_stream_early_break_and_close(llama):
    g = llama.stream(PROMPT, max_tokens=50, temperature=0)
    first = next(g)
    assert first
    g.close()
    with pytest.raises(StopIteration):
        next(g)
    for i, _ in enumerate(llama.stream(PROMPT, max_tokens=50)):
        if i == 1:
            break


def test_unfinished_stream_is_collected_without_deadlock(llama):
    s = llama.session()
    g = s.stream(PROMPT, max_tokens=None, temperature=0)
    next(g)
    with pytest.raises(hearth.FailedPreconditionError):
        s.feed([1])  # busy while the stream is open
    del g
    gc.collect()
    s.feed([1])  # free again
    # A stream that was never started holds nothing.
    g2 = s.stream(PROMPT, max_tokens=10)
    del g2
    gc.collect()
    s.reset()
    assert s.generate(PROMPT, max_tokens=2, temperature=0) is not None
    # A cycle keeps an unfinished generator until the collector breaks it.
    holder = {}
    holder["self"] = holder
    holder["gen"] = s.stream(PROMPT, max_tokens=None)
    next(holder["gen"])
    del holder
    gc.collect()
    s.feed([1])
    s.close()


def test_stream_raises_errors_from_c(llama):
    with llama.session(ctx=16) as s:
        g = s.stream("word " * 100, max_tokens=4)  # the prompt cannot fit
        with pytest.raises(hearth.InvalidArgumentError) as e:
            next(g)
        assert "16" in str(e.value)
        s.feed([1])  # the failed stream released the session


def test_session_after_close(llama):
    s = llama.session()
    s.close()
    s.close()
    assert s.closed
    with pytest.raises(hearth.FailedPreconditionError):
        s.generate("x")
    with pytest.raises(hearth.FailedPreconditionError):
        s.feed([1])


def test_stream_keeps_session_alive_after_close(llama):
    s = llama.session()
    g = s.stream(PROMPT, max_tokens=20, temperature=0)
    first = next(g)
    s.close()  # the open stream keeps the C session until it ends
    rest = "".join(g)
    assert first + rest == llama.generate(PROMPT, max_tokens=20, temperature=0)


def test_parse_special_and_add_special(qwen2, llama):
    # Explicit flags reach the C tokenizer: with add_special the llama prompt
    # gets its BOS (one more prompt token).
    with llama.session() as s:
        s.generate("Hello", max_tokens=1, add_special=False)
        assert s.last_result.n_prompt_tokens == 5
    with llama.session() as s:
        s.generate("Hello", max_tokens=1, parse_special=True)
        assert s.last_result.n_prompt_tokens == 6  # default rule kept: BOS into an empty session
        s.generate("Hello", max_tokens=1, parse_special=True)
        assert s.last_result.n_prompt_tokens == 5


def test_reuse_prefix(llama):
    with llama.session() as s:
        a = s.generate("Hello there", max_tokens=4, temperature=0)
        n = s.n_past
        # The whole conversation again plus more: only the new part is fed.
        s.generate("Hello there" + a + " friend", max_tokens=2, temperature=0, reuse_prefix=True)
        assert s.n_past > n
        assert s.last_result.n_prompt_tokens >= 1


def test_f16_kv_cache_is_close_and_checked(llama):
    ids = np.array(llama.tokenize("The capital of France is Paris, and of Italy"), dtype=np.int32)
    out = {}
    for kv in ("f32", "f16"):
        with llama.session(kv_type=kv, batch=4) as s:
            s.feed(ids)
            out[kv] = s.logits().copy()
    diff = np.abs(out["f16"] - out["f32"])
    assert 0 < diff.max() < 2e-2 * max(1.0, np.abs(out["f32"]).max())
    with pytest.raises(hearth.InvalidArgumentError, match="kv_type 'q8'"):
        llama.session(kv_type="q8")
    with pytest.raises(TypeError, match="kv_type"):
        llama.session(kv_type=1)
    with hearth.Engine(llama, n_seq=2, kv_type="f16", kv_block_size=16) as e:
        text = e.submit("Once upon a time", max_tokens=6, temperature=0).text()
    with llama.session(kv_type="f16") as s:
        assert s.generate("Once upon a time", max_tokens=6, temperature=0) == text


def test_truncate_rewinds(llama):
    ids = np.array(llama.tokenize("one two three four five"), dtype=np.int32)
    with llama.session() as s:
        s.feed(ids)
        first = s.logits().copy()
        with pytest.raises(hearth.OutOfRangeError, match="n_past"):
            s.truncate(len(ids) + 1)
        s.truncate(2)
        assert s.n_past == 2
        s.feed(ids[2:])
        np.testing.assert_array_equal(s.logits(), first)
