"""Bad input of every kind raises a hearth.Error (or TypeError for wrong
Python types) and never takes the interpreter down."""

from __future__ import annotations

import numpy as np
import pytest

import hearth

from conftest import LLAMA


def test_missing_file(tmp_path):
    path = tmp_path / "missing.gguf"
    with pytest.raises(hearth.NotFoundError) as e:
        hearth.Model(path)
    assert isinstance(e.value, FileNotFoundError)
    assert e.value.code == hearth.StatusCode.NOT_FOUND
    assert "missing.gguf" in e.value.message


def test_directory_and_empty_file(tmp_path):
    with pytest.raises(hearth.Error):
        hearth.Model(tmp_path)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(hearth.Error) as e:
        hearth.Model(empty)
    assert "empty.gguf" in e.value.message


def test_not_a_gguf(tmp_path):
    bad = tmp_path / "text.gguf"
    bad.write_bytes(b"this is not a model file at all" * 10)
    with pytest.raises(hearth.Error) as e:
        hearth.Model(bad)
    assert e.value.code != hearth.StatusCode.OK and e.value.message


@pytest.mark.parametrize("fraction", [0.0001, 0.01, 0.1, 0.5, 0.9, 0.9999])
def test_truncated_gguf(tmp_path, fraction):
    data = LLAMA.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: max(1, int(len(data) * fraction))])
    with pytest.raises(hearth.Error) as e:
        hearth.Model(cut)
    assert "cut.gguf" in e.value.message or "end of the file" in e.value.message


def test_bad_device_and_paths(tmp_path):
    with pytest.raises(hearth.Error):
        hearth.Model(LLAMA, device="no-such-device")
    with pytest.raises(hearth.InvalidArgumentError):
        hearth.Model(str(LLAMA) + "\0trailing")
    with pytest.raises(TypeError):
        hearth.Model(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hearth.Model(LLAMA, device=0)  # type: ignore[arg-type]
    with pytest.raises(hearth.InvalidArgumentError):
        hearth.Model(LLAMA, threads=-1)


def test_bad_token_ids(llama):
    n = llama.n_vocab
    with llama.session() as s:
        for bad in ([n], [-1], [1, 2, n + 5], [2**31 - 1]):
            with pytest.raises(hearth.InvalidArgumentError) as e:
                s.feed(bad)
            assert isinstance(e.value, ValueError)
        assert s.n_past == 0, "a failed feed must change nothing"
        with pytest.raises(hearth.InvalidArgumentError):
            s.feed([2**40])
        with pytest.raises(hearth.InvalidArgumentError):
            s.feed(np.array([2**40], dtype=np.int64))
        with pytest.raises(hearth.InvalidArgumentError):
            s.feed(np.zeros((2, 2), dtype=np.int32))
        for wrong in (["a"], [1.5], "abc", 5, None, [True], np.array([1.0])):
            with pytest.raises(TypeError):
                s.feed(wrong)
        with pytest.raises(hearth.InvalidArgumentError):
            s.score([1, n])
        s.feed([1, 2, 3])
        assert s.n_past == 3
    with pytest.raises(hearth.InvalidArgumentError) as e:
        llama.detokenize([1, 99999])
    assert "99999" in e.value.message


def test_context_overflow(llama):
    with llama.session(ctx=8) as s:
        with pytest.raises(hearth.InvalidArgumentError):
            s.feed(list(range(3, 20)))
        assert s.n_past == 0
        with pytest.raises(hearth.InvalidArgumentError):
            s.generate("word " * 50)


@pytest.mark.parametrize("kw, exc", [
    (dict(max_tokens=-1), hearth.InvalidArgumentError),
    (dict(max_tokens=2**40), hearth.InvalidArgumentError),
    (dict(max_tokens=1.5), TypeError),
    (dict(max_tokens="3"), TypeError),
    (dict(top_p=2.0), hearth.InvalidArgumentError),
    (dict(top_p=0.0), hearth.InvalidArgumentError),
    (dict(temperature=float("nan")), hearth.InvalidArgumentError),
    (dict(temperature="hot"), TypeError),
    (dict(top_k=1.5), TypeError),
    (dict(top_k=2**40), hearth.InvalidArgumentError),
    (dict(seed=-1), hearth.InvalidArgumentError),
    (dict(seed=2**64), hearth.InvalidArgumentError),
    (dict(penalty_last_n=-5), hearth.InvalidArgumentError),
    (dict(stop=""), hearth.InvalidArgumentError),
    (dict(stop=["ok", ""]), hearth.InvalidArgumentError),
    (dict(stop=["a\0b"]), hearth.InvalidArgumentError),
    (dict(stop=[1]), TypeError),
    (dict(stop=b"x"), TypeError),
    (dict(sampling={"temperature": 0}), TypeError),
    (dict(add_special=1), TypeError),
])
def test_bad_generate_params(llama, kw, exc):
    with pytest.raises(exc):
        llama.generate("Hello", **kw)
    with pytest.raises(exc):
        llama.stream("Hello", **kw)  # checked at the call, before iteration
    with llama.session() as s:
        with pytest.raises(exc):
            s.generate("Hello", **kw)
        assert s.n_past == 0


def test_bad_prompt_types(llama):
    for bad in (b"bytes", None, 5, ["list"]):
        with pytest.raises(TypeError):
            llama.generate(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            llama.tokenize(bad)  # type: ignore[arg-type]
    # Lone surrogates cannot be UTF-8.
    with pytest.raises(UnicodeEncodeError):
        llama.generate("\ud800")


def test_bad_session_params(llama):
    with pytest.raises(hearth.InvalidArgumentError):
        llama.session(ctx=-1)
    with pytest.raises(TypeError):
        llama.session(ctx="big")  # type: ignore[arg-type]
    with pytest.raises(hearth.Error):
        llama.session(ctx=2**32 - 1)  # far more than the model allows
    with pytest.raises(TypeError):
        hearth.Session("not a model")  # type: ignore[arg-type]


def test_prompt_with_nul_and_odd_text(llama):
    # NUL is ordinary text for the tokenizer (lengths are explicit).
    ids = llama.tokenize("a\0b", add_special=False)
    assert llama.detokenize(ids) == "a\0b"
    assert isinstance(llama.generate("\0\0", max_tokens=2), str)


def test_chat_format(llama, qwen2):
    msgs = [{"role": "user", "content": "Hi!"}]
    for m in (llama, qwen2):
        try:
            text = m.chat_format(msgs)
        except hearth.NotFoundError:
            continue  # no known format for this tiny model: a clean error
        assert "Hi!" in text
        assert m.chat_format([("user", "Hi!")]) == text
    with pytest.raises(TypeError):
        llama.chat_format("Hi")  # type: ignore[arg-type]
    with pytest.raises(hearth.InvalidArgumentError):
        llama.chat_format([{"role": "user"}])
    with pytest.raises(hearth.InvalidArgumentError):
        llama.chat_format([("user", "a\0b")])
    with pytest.raises(hearth.Error):
        llama.chat_format([("wizard", "hi")])


def test_busy_session_from_another_call(llama):
    with llama.session() as s:
        g = s.stream("Hello", max_tokens=20)
        next(g)
        for call in (lambda: s.logits(), lambda: s.reset(), lambda: s.n_past,
                     lambda: s.generate("x"), lambda: next(s.stream("x"))):
            with pytest.raises(hearth.FailedPreconditionError):
                call()
        g.close()
        s.reset()
