"""Training data from Python: Model.load_dataset and hearth.Dataset.

The masks are checked against what inference does with the same model: the
prompt part of a conversation is exactly Model.tokenize(Model.chat_format(...,
add_generation_prompt=True)), and the trained ids decode to the answer and
its end-of-turn marker.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import hearth


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_conversation_trains_the_answer_only(qwen2, tmp_path):
    messages = [{"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris"}]
    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": messages, "id": 1}])
    data = qwen2.load_dataset(path)
    assert len(data) == 1 and data.kinds == {"text": 0, "prompt_completion": 0, "messages": 1}
    assert data.max_tokens == qwen2.info.n_ctx_train
    ex = data[0]
    assert ex.line == 1 and ex.tokens.dtype == np.int32 and ex.trained.dtype == np.uint8
    pairs = [(m["role"], m["content"]) for m in messages]
    prompt = qwen2.tokenize(qwen2.chat_format(pairs[:2], add_generation_prompt=True),
                            parse_special=True)
    assert list(ex.tokens[:len(prompt)]) == prompt
    assert not ex.trained[:len(prompt)].any()
    answer = qwen2.detokenize(ex.tokens[ex.trained == 1], render_special=True)
    assert answer == "Paris<|im_end|>"
    assert data.n_trained_tokens == int(ex.trained.sum())
    assert data.n_tokens == len(ex.tokens) == data.longest


def test_prompt_completion_and_text(llama, tmp_path):
    path = write_jsonl(tmp_path / "pc.jsonl", [{"prompt": "Q: hi\nA:", "completion": " hello"},
                                                {"text": "plain words"}])
    data = llama.load_dataset(path, max_tokens=64)
    assert len(data) == 2 and data.max_tokens == 64
    pc, text = list(data)
    eos = llama.info.token_eos
    assert eos >= 0
    assert pc.tokens[-1] == eos and text.tokens[-1] == eos
    assert pc.trained[-1] == 1 and text.trained[-1] == 1
    # (decoding drops the SentencePiece space a text starts with)
    assert llama.detokenize(pc.tokens[pc.trained == 1]) == "hello"
    assert text.trained[0] == 0 and text.trained[1:].all()
    assert data[-1].line == 2
    with pytest.raises(IndexError):
        data[2]


def test_too_long_fails_or_truncates(llama, tmp_path):
    path = write_jsonl(tmp_path / "long.jsonl", [{"text": "word " * 50}])
    with pytest.raises(hearth.InvalidArgumentError, match=r"long\.jsonl:1: the example is"):
        llama.load_dataset(path, max_tokens=8)
    data = llama.load_dataset(path, max_tokens=8, truncate=True)
    assert data.n_truncated == 1 and len(data[0].tokens) == 8


@pytest.mark.parametrize("line, message", [
    ('{"messages": [{"role": "user", "content": "x"}]}', "no assistant message"),
    ('{"prompt": "x"}', "'prompt' without 'completion'"),
    ('{"text": "a", "text": "b"}', "duplicate"),
    ('not json', "bad.jsonl:2"),
])
def test_bad_records_name_file_and_line(qwen2, tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(hearth.InvalidArgumentError, match="bad.jsonl:2") as err:
        qwen2.load_dataset(path)
    assert message in str(err.value)


def test_arguments(qwen2, tmp_path):
    path = write_jsonl(tmp_path / "ok.jsonl", [{"text": "a"}])
    with pytest.raises(hearth.NotFoundError):
        qwen2.load_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(TypeError):
        qwen2.load_dataset(path, max_tokens="8")
    with pytest.raises(hearth.InvalidArgumentError):
        qwen2.load_dataset(path, max_tokens=0)
    with pytest.raises(TypeError):
        hearth.Dataset()
    assert "1 examples" in repr(qwen2.load_dataset(path))
