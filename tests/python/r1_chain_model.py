"""A tiny DeepSeek-R1-distill-shaped model whose greedy reply is known.

`write(path)` writes a qwen2 GGUF with the R1 distills' chat markup
(<｜User｜>, <｜Assistant｜>, <｜end▁of▁sentence｜> as control tokens, <think>
and </think> as ordinary added tokens, and a chat template that names them,
so hearth picks its built-in "deepseek-r1" format) and weights made so that
each greedy token depends only on the token before it: one layer whose
attention and feed-forward write nothing (zero weights and biases), one-hot
embeddings, and an output matrix that maps each token of a chain to the next
one. After the prompt's last token, <｜Assistant｜>, the model writes

    <think>\\nLet me think.</think>\\n\\nParis<｜end▁of▁sentence｜>

and any other token is followed by end of sentence. This is what an R1
distill's reply looks like to the server (reasoning, then the answer),
without fetching a multi-gigabyte model: the server's reasoning split, chat
format and end-of-turn handling run end to end on it.
"""

from __future__ import annotations

import numpy as np

USER = "<\uff5cUser\uff5c>"
ASSISTANT = "<\uff5cAssistant\uff5c>"
BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
REASONING = "\nLet me think."
ANSWER = "Paris"

# A shortened DeepSeek-R1 distill template: the markers are what hearth's
# format detection looks for.
TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}{{'" + USER +
            "' + message['content']}}{% elif message['role'] == 'assistant' %}{{'" + ASSISTANT +
            "' + message['content'] + '" + EOS + "'}}{% else %}{{message['content']}}{% endif %}"
            "{% endfor %}{% if add_generation_prompt %}{{'" + ASSISTANT + "'}}{% endif %}")


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-character table: one token per byte."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) +
                 list(range(ord("\xae"), ord("\xff") + 1)))
    chars = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def write(path) -> None:
    import gguf

    tokens = _byte_tokens()
    types = [gguf.TokenType.NORMAL] * len(tokens)

    def add(text: str, kind) -> int:
        tokens.append(text)
        types.append(kind)
        return len(tokens) - 1

    # Words in the byte-level alphabet (Ġ is a space, Ċ a newline).
    let, me, think, paris, blank = (add(t, gguf.TokenType.NORMAL)
                                    for t in ("Let", "\u0120me", "\u0120think", "Paris",
                                              "\u010a\u010a"))
    add("Le", gguf.TokenType.NORMAL)  # the merges' middle step
    open_, close = (add(t, gguf.TokenType.USER_DEFINED) for t in ("<think>", "</think>"))
    bos, eos, user, assistant = (add(t, gguf.TokenType.CONTROL) for t in (BOS, EOS, USER,
                                                                         ASSISTANT))
    newline, dot = tokens.index("\u010a"), tokens.index(".")
    chain = [assistant, open_, newline, let, me, think, dot, close, blank, paris, eos]

    n_vocab = len(tokens)
    d = (n_vocab + 63) // 64 * 64  # a one-hot row per token, 4 heads of 16k
    n_ff = 64
    embd = np.zeros((n_vocab, d), np.float32)
    embd[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    nxt = {a: b for a, b in zip(chain, chain[1:])}
    out = np.zeros((n_vocab, d), np.float32)
    for t in range(n_vocab):
        out[nxt.get(t, eos), t] = 1.0

    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("tiny-r1-chain")
    w.add_context_length(256)
    w.add_embedding_length(d)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([int(t) for t in types])
    w.add_token_merges(["L e", "Le t"])
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(True)
    w.add_chat_template(TEMPLATE)
    ones = np.ones(d, np.float32)
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", out)
    w.add_tensor("blk.0.attn_norm.weight", ones)
    w.add_tensor("blk.0.ffn_norm.weight", ones)
    for name in ("q", "k", "v"):
        w.add_tensor(f"blk.0.attn_{name}.weight", np.zeros((d, d), np.float32))
        w.add_tensor(f"blk.0.attn_{name}.bias", np.zeros(d, np.float32))
    w.add_tensor("blk.0.attn_output.weight", np.zeros((d, d), np.float32))
    w.add_tensor("blk.0.ffn_gate.weight", np.zeros((n_ff, d), np.float32))
    w.add_tensor("blk.0.ffn_up.weight", np.zeros((n_ff, d), np.float32))
    w.add_tensor("blk.0.ffn_down.weight", np.zeros((d, n_ff), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    import sys

    write(sys.argv[1])
