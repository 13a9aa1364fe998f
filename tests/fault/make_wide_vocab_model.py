#!/usr/bin/env python3
"""Writes tests/fault/data/tiny-llama-wide-vocab.gguf: a one-layer llama whose
vocabulary (512 tokens, tiny-llama-f32's tokenizer) is wide next to its
activations (n_embd 8, n_ff 16).

Why: with such a model the logits of every position are the largest thing a
step holds, so scoring (hearth_session_score, logits at all positions) needs a
larger activations arena than decoding, and the fault tests can make that
mid-session allocation fail. Real models with large vocabularies (Llama 3:
128k tokens next to n_embd 4096) are in the same situation; the tiny test
models of tests/data/models are not (their FFN is as wide as the logits).

Weights are random (fixed seed): the tests compare a session that saw a fault
with one that did not, never against a reference. Regenerate with
  python3 tests/fault/make_wide_vocab_model.py
(needs numpy and gguf from PyPI).
"""
import pathlib

import gguf
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests/data/models/tiny-llama-f32.gguf"
OUT = ROOT / "tests/fault/data/tiny-llama-wide-vocab.gguf"

N_EMBD, N_HEAD, N_HEAD_KV, HEAD_DIM, N_FF, N_CTX = 8, 2, 1, 4, 16, 128


def field_value(reader, key):
    f = reader.fields[key]
    kinds = f.types
    if kinds[0] == gguf.GGUFValueType.ARRAY:
        if kinds[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if kinds[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0].item()


def main():
    src = gguf.GGUFReader(str(SOURCE))
    tokens = field_value(src, "tokenizer.ggml.tokens")
    n_vocab = len(tokens)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(OUT), "llama")
    w.add_name("tiny-llama-wide-vocab")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(1)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model(field_value(src, "tokenizer.ggml.model"))
    w.add_tokenizer_pre(field_value(src, "tokenizer.ggml.pre"))
    w.add_token_list(tokens)
    w.add_token_scores(field_value(src, "tokenizer.ggml.scores"))
    w.add_token_types(field_value(src, "tokenizer.ggml.token_type"))
    w.add_bos_token_id(field_value(src, "tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field_value(src, "tokenizer.ggml.eos_token_id"))
    w.add_unk_token_id(field_value(src, "tokenizer.ggml.unknown_token_id"))
    w.add_add_bos_token(field_value(src, "tokenizer.ggml.add_bos_token"))
    w.add_add_eos_token(field_value(src, "tokenizer.ggml.add_eos_token"))
    w.add_add_space_prefix(field_value(src, "tokenizer.ggml.add_space_prefix"))

    rng = np.random.default_rng(20261122)

    def tensor(name, *ne):
        # ne in GGUF order (innermost first); numpy wants the reverse.
        data = rng.standard_normal(tuple(reversed(ne))).astype(np.float32) * 0.5
        if name.endswith("norm.weight"):
            data = 1.0 + 0.1 * data
        w.add_tensor(name, data)

    q_dim, kv_dim = N_HEAD * HEAD_DIM, N_HEAD_KV * HEAD_DIM
    tensor("token_embd.weight", N_EMBD, n_vocab)
    tensor("blk.0.attn_norm.weight", N_EMBD)
    tensor("blk.0.attn_q.weight", N_EMBD, q_dim)
    tensor("blk.0.attn_k.weight", N_EMBD, kv_dim)
    tensor("blk.0.attn_v.weight", N_EMBD, kv_dim)
    tensor("blk.0.attn_output.weight", q_dim, N_EMBD)
    tensor("blk.0.ffn_norm.weight", N_EMBD)
    tensor("blk.0.ffn_gate.weight", N_EMBD, N_FF)
    tensor("blk.0.ffn_up.weight", N_EMBD, N_FF)
    tensor("blk.0.ffn_down.weight", N_FF, N_EMBD)
    tensor("output_norm.weight", N_EMBD)
    tensor("output.weight", N_EMBD, n_vocab)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
