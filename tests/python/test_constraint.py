"""Constrained decoding from Python: ``ban=`` (the shipped banned-strings
extension plugin) and ``constraint=(plugin, config)``."""

from __future__ import annotations

import pytest

import hearth

PROMPT = "Once upon a time"


def greedy(model: hearth.Model, **kwargs) -> str:
    return model.generate(PROMPT, max_tokens=24, temperature=0, **kwargs)


def test_runtime_lists_the_extension(llama):
    names = [p.name for p in hearth.plugins()]
    assert "banned-strings" in names


def test_banned_text_never_appears(llama):
    free = greedy(llama)
    assert len(free) >= 6
    banned = free[len(free) // 2:len(free) // 2 + 3]
    constrained = greedy(llama, ban=banned)
    assert banned not in constrained
    assert constrained != free
    # The same through the general form, and through a stream.
    assert greedy(llama, constraint=("banned-strings", banned + "\n")) == constrained
    streamed = "".join(llama.stream(PROMPT, max_tokens=24, temperature=0, ban=[banned]))
    assert streamed == constrained


def test_session_generate_takes_ban(llama):
    with llama.session() as s:
        text = s.generate(PROMPT, max_tokens=24, temperature=0, ban=["e", "a"])
    assert "e" not in text and "a" not in text


def test_errors(llama):
    with pytest.raises(hearth.NotFoundError, match="no-such-plugin"):
        greedy(llama, constraint=("no-such-plugin", "x"))
    with pytest.raises(hearth.InvalidArgumentError, match="empty"):
        greedy(llama, ban="")
    with pytest.raises(hearth.InvalidArgumentError, match="newline"):
        greedy(llama, ban="a\nb")
    with pytest.raises(TypeError, match="not both"):
        greedy(llama, ban="a", constraint=("banned-strings", "b"))
    with pytest.raises(TypeError, match="pair"):
        greedy(llama, constraint="banned-strings")
