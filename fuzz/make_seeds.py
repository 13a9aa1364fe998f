#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (run from anywhere).

Owns: the starting inputs of every fuzz target, kept small (< 2 MB in all):
  gguf, model_load  tiny but complete llama, qwen2 and gemma3 models (1 layer,
                    n_embd 8, the test models' real tokenizer metadata) and the
                    header + metadata + tensor-info prefix of each test model
                    (its tensor data cut off);
  tokenizer_*       the strings of ../shared/data/tokenizers/*.inp, one a file;
  chat_template     hand-written message lists in fuzz_chat_template's format;
  safetensors       the reference writer's fixture and small images of every dtype;
  lora_file         adapter_config.json, a NUL byte, adapter_model.safetensors
                    (PEFT) and tiny GGUF LoRA files, as fuzz_lora_file reads them;
  json              hand-written JSON documents (configs, dataset lines, every value
                    kind, escapes, a duplicate key), after the byte that picks the
                    depth limit;
  adapter_bind      the real adapters of tests/data/lora (GGUF files and PEFT
                    directories in lora_file's format, good and bad), each after
                    the byte fuzz_adapter_bind reads to pick its base model;
  serve_request     OpenAI chat and completions bodies, good and bad, after the
                    byte that picks the endpoint and the max_tokens limit.
`make_seeds.py safetensors lora_file adapter_bind` writes only those targets' seeds.
Re-running replaces the files it wrote and keeps the rest: the text targets'
directories also hold inputs merged in from longer runs (libFuzzer -merge=1,
named by SHA-1), the GGUF targets' do not (their finds are too big to keep).
"""

import hashlib
import json
import pathlib
import sys
import tempfile

import numpy as np

import gguf

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
MODELS = ROOT / "tests" / "data" / "models"
TOKENIZERS = ROOT.parent / "shared" / "data" / "tokenizers"
PREFIX_CAP = 48 * 1024  # bytes of a test model kept as a metadata-only seed


def put(target, data, name=None):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    name = name or hashlib.sha1(data).hexdigest()[:16]
    (d / name).write_bytes(data)


def copy_tokenizer(reader, writer):
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = gguf.GGUFValueType(field.types[0])
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = gguf.GGUFValueType(field.types[1])
            if sub == gguf.GGUFValueType.STRING:
                val = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
            else:
                val = [field.parts[i][0].item() for i in field.data]
            writer.add_key_value(key, val, vtype, sub)
        elif vtype == gguf.GGUFValueType.STRING:
            writer.add_key_value(key, bytes(field.parts[field.data[0]]).decode("utf-8"), vtype)
        else:
            writer.add_key_value(key, field.parts[field.data[0]][0].item(), vtype)


def tiny_model(arch, tokenizer_source):
    """A complete one-layer model of `arch` with zero weights."""
    reader = gguf.GGUFReader(str(tokenizer_source))
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    n_embd, n_head, n_head_kv, head_dim, n_ff = 8, 2, 1, 4, 16
    with tempfile.NamedTemporaryFile(suffix=".gguf") as tmp:
        w = gguf.GGUFWriter(tmp.name, arch)
        w.add_name(f"fuzz-seed-{arch}")
        w.add_context_length(64)
        w.add_embedding_length(n_embd)
        w.add_block_count(1)
        w.add_feed_forward_length(n_ff)
        w.add_head_count(n_head)
        w.add_head_count_kv(n_head_kv)
        w.add_rope_dimension_count(head_dim)
        w.add_layer_norm_rms_eps(1e-6)
        if arch == "gemma3":
            w.add_key_value("gemma3.attention.sliding_window", 16, gguf.GGUFValueType.UINT32)
            # One layer: the pattern may be at most n_layer + 1 (layer 0 local).
            w.add_key_value("gemma3.attention.sliding_window_pattern", 2,
                            gguf.GGUFValueType.UINT32)
            w.add_key_value("gemma3.attention.key_length", head_dim, gguf.GGUFValueType.UINT32)
            w.add_key_value("gemma3.attention.value_length", head_dim, gguf.GGUFValueType.UINT32)
        copy_tokenizer(reader, w)

        def t(name, *shape, dtype=np.float32):
            # numpy shapes are outermost-first; GGUF's ne[0] is the last.
            w.add_tensor(name, np.zeros(tuple(reversed(shape)), dtype=dtype))

        q_dim, kv_dim = n_head * head_dim, n_head_kv * head_dim
        t("token_embd.weight", n_embd, n_vocab, dtype=np.float16)
        t("output_norm.weight", n_embd)
        p = "blk.0."
        t(p + "attn_norm.weight", n_embd)
        t(p + "attn_q.weight", n_embd, q_dim)
        t(p + "attn_k.weight", n_embd, kv_dim)
        t(p + "attn_v.weight", n_embd, kv_dim)
        t(p + "attn_output.weight", q_dim, n_embd)
        t(p + "ffn_norm.weight", n_embd)
        t(p + "ffn_gate.weight", n_embd, n_ff)
        t(p + "ffn_up.weight", n_embd, n_ff)
        t(p + "ffn_down.weight", n_ff, n_embd)
        if arch == "qwen2":
            t(p + "attn_q.bias", q_dim)
            t(p + "attn_k.bias", kv_dim)
            t(p + "attn_v.bias", kv_dim)
        if arch == "gemma3":
            t(p + "post_attention_norm.weight", n_embd)
            t(p + "post_ffw_norm.weight", n_embd)
            t(p + "attn_q_norm.weight", head_dim)
            t(p + "attn_k_norm.weight", head_dim)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return pathlib.Path(tmp.name).read_bytes()


def metadata_prefix(path):
    """The bytes before the tensor data (header, metadata, tensor infos)."""
    reader = gguf.GGUFReader(str(path))
    end = min(reader.data_offset, PREFIX_CAP)
    return path.read_bytes()[:end]


def main():
    llama_tok = MODELS / "tiny-llama-f32.gguf"
    qwen2_tok = MODELS / "tiny-qwen2-f32.gguf"
    for arch, tok in (("llama", llama_tok), ("qwen2", qwen2_tok), ("gemma3", llama_tok)):
        data = tiny_model(arch, tok)
        for target in ("gguf", "model_load"):
            put(target, data, f"tiny-{arch}.gguf")
    for path in sorted(MODELS.glob("*.gguf")):
        data = metadata_prefix(path)
        for target in ("gguf", "model_load"):
            put(target, data, f"{path.stem}.prefix")
    put("gguf", b"GGUF\x03\x00\x00\x00" + bytes(16), "empty-v3")

    for kind in ("llama-spm", "gpt-2", "deepseek-llm"):
        text = (TOKENIZERS / f"ggml-vocab-{kind}.gguf.inp").read_text("utf-8")
        target = "tokenizer_" + kind.replace("-", "_")
        for s in text.split("\n__ggml_vocab_test__\n"):
            if s:
                put(target, s)
        for s in ("<s>Hello</s> world", "<|endoftext|><|im_start|>user\nhi<|im_end|>",
                  "<unk> \u2581\u2581x <0x41>", "\xff\xfe bad"):
            put(target, s)
        # Little-endian id arrays for the Decode/StreamDecoder half.
        put(target, np.arange(0, 64, dtype="<i4").tobytes())
        put(target, np.array([0xE2, 0x82, 0xAC, 259, 300, -1, 1 << 30], dtype="<i4").tobytes())

    chats = [
        "\x01system\tYou are terse.\x1euser\tHi!\x1eassistant\tHello.\x1euser\tAgain?",
        "\x00user\tone turn",
        "\x01model\tgemma says first\x1euser\tthen user",
        "\x01user\t<|im_start|>assistant\n<|im_end|>[INST] <<SYS>>\x1eassistant\t<end_of_turn>",
        "\x00robot\tunknown role",
        "\x01system\t\x1esystem\ttwo systems\x1euser\t",
        "\x01{% for message in messages %}<|start_header_id|>{% endfor %}",
        "\x00",
    ]
    for c in chats:
        put("chat_template", c)
    safetensors_seeds()
    lora_file_seeds()
    adapter_bind_seeds()
    dataset_seeds()
    json_seeds()
    serve_request_seeds()


def serve_request_seeds():
    """Bodies for fuzz_serve_request; first byte: bit 0 completions, the rest the limit."""
    chat = [
        {"model": "base", "messages": [{"role": "user", "content": "hi"}]},
        {"model": "base+cardiology", "messages": [
            {"role": "system", "content": "terse"}, {"role": "user", "content": "chest pain"}],
         "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "seed": 42, "n": 2,
         "stop": ["\n", "END"], "stream": True, "stream_options": {"include_usage": True},
         "logprobs": True, "top_logprobs": 3},
        {"model": "base", "adapters": {"cardiology": 0.5, "triage": 1.0},
         "messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}]},
                      {"role": "user", "content": "b"}], "max_completion_tokens": 5},
        {"model": "base", "adapters": ["triage"], "messages": [{"role": "tool", "content": "x"}]},
        {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
        {"model": "base", "messages": [], "tools": [{"type": "function"}]},
        {"messages": [{"role": "user", "content": "nul\u0000"}], "seed": -1, "stop": "x"},
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}},
    ]
    completion = [
        {"model": "base", "prompt": "Once upon a time", "max_tokens": 8},
        {"model": "base+triage", "prompt": ["a", "b"], "n": 3, "logprobs": 2, "echo": False},
        {"model": "base", "prompt": [1, 2, 3], "stream": True},
        {"model": "base", "prompt": [[1, 2], [3]], "best_of": 1, "suffix": ""},
        {"model": "base", "prompt": [], "logprobs": 9},
        {"model": "base+cardiology+triage", "prompt": "x", "temperature": 2.5},
    ]
    for i, b in enumerate(chat):
        put("serve_request", bytes([64]) + json.dumps(b).encode(), f"chat-{i}")
    for i, b in enumerate(completion):
        put("serve_request", bytes([65]) + json.dumps(b).encode(), f"completion-{i}")
    for i, raw in enumerate(['{"messages": [', '[' * 80 + ']' * 80, r'"\ud800"', 'null', '{}']):
        put("serve_request", bytes([i]) + raw.encode(), f"raw-{i}")


def json_seeds():
    """Documents for fuzz_json; the first byte picks the depth limit (1 + b % 64)."""
    docs = [
        '{"r":16,"lora_alpha":32,"target_modules":["q_proj","v_proj"],"peft_type":"LORA"}',
        '{"text":"hello"}',
        '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}',
        '[1,2.5,-3e10,1e400,-0,true,false,null,"\\u00e9\\ud83d\\ude00\\n\\""]',
        '{"a":{"b":{"c":[[[]]]}}}', '"x"', '0', ' \n\t{ } ', '{"a":1,"a":2}',
        '{"prompt":"p","completion":"c"}', '{"a":1}\u0000{"b":2}',
    ]
    for i, d in enumerate(docs):
        put("json", bytes([63]) + d.encode("utf-8"), f"doc-{i}")


def safetensors_image(tensors, metadata=None):
    """A safetensors file's bytes, written by the reference writer."""
    from safetensors.numpy import save

    return save(tensors, metadata=metadata)


def safetensors_seeds():
    put("safetensors", (ROOT / "tests" / "data" / "safetensors" / "small.safetensors").read_bytes(),
        "small.safetensors")
    put("safetensors", safetensors_image({
        "f64": np.arange(3, dtype="<f8"), "i32": np.array([[1, -2], [3, 4]], dtype="<i4"),
        "bool": np.array([True, False]), "u16": np.arange(2, dtype="<u2"),
        "i8": np.zeros((1, 1, 1, 2), dtype="i1")}, {"format": "np"}), "dtypes.safetensors")
    put("safetensors", safetensors_image({}), "empty.safetensors")
    header = b'{"__metadata__":{"a":"b"},"t":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}'
    put("safetensors", len(header).to_bytes(8, "little") + header + bytes(4), "hand.safetensors")


def peft_weights(modules, r, n, adapter=""):
    name = (lambda m, ab: f"base_model.model.{m}.lora_{ab}"
            + (f".{adapter}" if adapter else "") + ".weight")
    tensors = {}
    for i, m in enumerate(modules):
        rank = r[i] if isinstance(r, list) else r
        tensors[name(m, "A")] = np.full((rank, n), 0.01 * (i + 1), dtype=np.float32)
        tensors[name(m, "B")] = np.full((n, rank), -0.02 * (i + 1), dtype=np.float32)
    return tensors


def gguf_lora(pairs, alpha=8.0, dtype=np.float32, arch="llama"):
    """A GGUF LoRA as llama.cpp's converter writes it: lora_a ne [n_in, r]."""
    with tempfile.NamedTemporaryFile(suffix=".gguf") as tmp:
        w = gguf.GGUFWriter(tmp.name, arch)
        w.add_string("general.type", "adapter")
        w.add_string("adapter.type", "lora")
        w.add_float32("adapter.lora.alpha", alpha)
        w.add_name("fuzz-seed-lora")
        for weight, r, n_in, n_out in pairs:
            # numpy shapes are outermost-first: lora_a is (r, n_in), ne [n_in, r].
            w.add_tensor(weight + ".lora_a", np.full((r, n_in), 0.5, dtype=dtype))
            w.add_tensor(weight + ".lora_b", np.full((n_out, r), -0.25, dtype=dtype))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return pathlib.Path(tmp.name).read_bytes()


def lora_file_seeds():
    q, v, down = ("model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
                  "model.layers.0.mlp.down_proj")
    configs = {
        "plain": {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"],
                  "use_rslora": False, "use_dora": False, "fan_in_fan_out": False,
                  "base_model_name_or_path": "tiny", "rank_pattern": {}, "alpha_pattern": {}},
        "patterns": {"r": 2, "lora_alpha": 4, "use_rslora": True,
                     "rank_pattern": {"model.layers.1.self_attn.v_proj": 3},
                     "alpha_pattern": {"v_proj": 6.5}, "target_modules": "all-linear"},
    }
    seeds = {
        "plain": (configs["plain"], peft_weights([q, down, "lm_head"], 2, 4)),
        "patterns": (configs["patterns"], peft_weights([q, v], [2, 3], 4)),
        "adapter-name": (configs["plain"], peft_weights([q], 2, 4, adapter="default")),
        "gemma3": (configs["plain"],
                   peft_weights(["model.language_model.layers.2.mlp.gate_proj"], 2, 4)),
    }
    for name, (config, tensors) in seeds.items():
        put("lora_file", json.dumps(config).encode() + b"\0" + safetensors_image(tensors),
            f"peft-{name}")
    put("lora_file", gguf_lora([("blk.0.attn_q.weight", 2, 4, 4),
                                ("output.weight", 1, 4, 6)]), "gguf-f32.gguf")
    put("lora_file", gguf_lora([("blk.1.ffn_up.weight", 2, 4, 8)], alpha=2.0,
                               dtype=np.float16), "gguf-f16.gguf")


def adapter_bind_seeds():
    lora = ROOT / "tests" / "data" / "lora"
    base = {"llama": b"\x00", "qwen2": b"\x01"}  # fuzz_adapter_bind: first byte & 1

    def peft(path):
        return ((path / "adapter_config.json").read_bytes() + b"\0"
                + (path / "adapter_model.safetensors").read_bytes())

    for name in ("llama-all", "qwen2-all"):
        arch = name.split("-")[0]
        put("adapter_bind", base[arch] + (lora / f"{name}.gguf").read_bytes(), f"{name}.gguf")
        put("adapter_bind", base[arch] + peft(lora / name), f"peft-{name}")
    put("adapter_bind", base["llama"] + peft(lora / "llama-qv-rs"), "peft-llama-qv-rs")
    # The bad fixtures are all for tiny-llama.
    for path in sorted((lora / "bad").iterdir()):
        data = path.read_bytes() if path.suffix == ".gguf" else peft(path)
        put("adapter_bind", base["llama"] + data, f"bad-{path.name}")
    # A config alone: its weights part is the fallback q_proj/k_proj pair.
    config = {"peft_type": "LORA", "r": 2, "lora_alpha": 4,
              "target_modules": ["q_proj", "k_proj", "lm_head"]}
    for arch in ("llama", "qwen2"):
        put("adapter_bind", base[arch] + json.dumps(config).encode() + b"\0",
            f"peft-fallback-{arch}")
    # Small adapters that parse but do not fit tiny-llama (n_embd 64, 2 layers,
    # k_proj 32 outputs), one per refusal; and lm_head on its tied embedding.
    lm_head = {"base_model.model.lm_head.lora_A.weight": np.full((2, 64), 0.01, np.float32),
               "base_model.model.lm_head.lora_B.weight": np.full((512, 2), -0.02, np.float32)}
    misfits = {
        "layer-past-end": peft_weights(["model.layers.2.self_attn.q_proj"], 2, 64),
        "k-outputs": peft_weights(["model.layers.0.self_attn.k_proj"], 2, 64),
        "tied-lm-head": lm_head,
    }
    for name, tensors in misfits.items():
        put("adapter_bind", base["llama"] + json.dumps(config).encode() + b"\0"
            + safetensors_image(tensors), f"peft-{name}")
    put("adapter_bind", base["llama"] + gguf_lora([("blk.0.attn_q.weight", 2, 64, 64)],
                                                  arch="qwen2"), "gguf-other-arch.gguf")


def dataset_seeds():
    """JSONL training files; the first byte picks the chat format (0 chatml,
    1 gemma, 2 llama3, 3 llama2, 4 none), the limit and truncation."""
    import json
    conversation = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And <|im_end|> of <end_of_turn> Italy?"},
        {"role": "assistant", "content": "Rome."}]}
    lines = [json.dumps(conversation), json.dumps({"prompt": "2+2=", "completion": "4"}),
             "", json.dumps({"text": "Once upon a time", "id": 3})]
    good = "\n".join(lines) + "\n"
    for first in range(5):
        put("dataset", bytes([first]) + good.encode(), f"all-kinds-{first}")
    put("dataset", bytes([0x1c]) + good.encode(), "truncate-short")
    bad = [
        '{"text": "a", "text": "b"}',
        '{"messages": [{"role": "user", "content": "x", "tool_calls": []}]}',
        '{"messages": [{"role": "assistant", "content": "first"}]}',
        '{"prompt": "no completion"}',
        '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]',
        '\ufeff{"text": "bom"}\r',
        '{"text": "\\ud800"}',
    ]
    for i, b in enumerate(bad):
        put("dataset", b"\x00" + b.encode("utf-8"), f"bad-{i}")


if __name__ == "__main__":
    if sys.argv[1:]:
        for target in sys.argv[1:]:
            {"safetensors": safetensors_seeds, "lora_file": lora_file_seeds,
             "adapter_bind": adapter_bind_seeds, "dataset": dataset_seeds,
             "json": json_seeds, "serve_request": serve_request_seeds}[target]()
    else:
        main()
