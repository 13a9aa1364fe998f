"""Models: a loaded GGUF file, its tokenizer, and one-shot generation."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from hearth import _hearth
from hearth._adapter import Adapter, AdapterSpec, adapter_pairs, c_pairs
from hearth._dataset import Dataset
from hearth._request import (
    Request,
    message_pairs,
    TokenIds,
    check_count,
    encode_text,
    make_request,
    token_array,
)
from hearth._runtime import PathLike, Runtime, _fspath_bytes, default_runtime
from hearth._session import Prompt, Session, overrides, with_generate_args
from hearth._types import ModelInfo, SamplingParams
from hearth.errors import InvalidArgumentError

if TYPE_CHECKING:
    from hearth._trainer import Trainer


class Model:
    """A language model loaded from a GGUF file (``hearth_model``).

    Args:
        path: the ``.gguf`` file. It is validated before anything in it is
            trusted; weights are memory-mapped where the device allows.
        device: a device name from :func:`hearth.devices` (``"cpu"``,
            ``"cuda:0"`` …); None picks the best one.
        threads: CPU threads for compute; None uses all cores.
        runtime: the :class:`hearth.Runtime` to load into; None uses the
            process-wide default.

    Raises:
        hearth.NotFoundError: no such file or device (also a FileNotFoundError).
        hearth.InvalidArgumentError: the file is not a valid GGUF model.
        hearth.UnimplementedError: the architecture or a weight format is not
            supported.

    A model is immutable and may be shared by any number of threads; each
    thread makes its own :class:`Session`. The GIL is released while it loads.

    Example::

        model = hearth.Model("qwen2.5-0.5b-instruct-q8_0.gguf", threads=4)
        print(model.generate("The capital of France is", max_tokens=16, temperature=0))
        for piece in model.stream("Write a haiku about rain", seed=1):
            print(piece, end="", flush=True)
    """

    def __init__(
        self,
        path: PathLike,
        *,
        device: Optional[str] = None,
        threads: Optional[int] = None,
        runtime: Optional[Runtime] = None,
    ) -> None:
        raw_path = _fspath_bytes("path", path)
        if device is not None:
            if not isinstance(device, str):
                raise TypeError(f"device must be a str or None, not {type(device).__name__}")
            if "\0" in device:
                raise InvalidArgumentError(f"device contains a NUL character: {device!r}")
        if runtime is not None and not isinstance(runtime, Runtime):
            raise TypeError(f"runtime must be a hearth.Runtime, not {type(runtime).__name__}")
        n_threads = check_count("threads", threads)
        self._runtime = runtime if runtime is not None else default_runtime()
        self._m = _hearth.Model(self._runtime._rt, raw_path, device, n_threads)
        self._info = ModelInfo._from_dict(self._m.info())
        #: The path the model was loaded from.
        self.path: str = os.fsdecode(raw_path)

    # -- description -----------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """What the model is: architecture, size, vocabulary, tokenizer, device."""
        return self._info

    @property
    def n_vocab(self) -> int:
        return self._info.n_vocab

    def meta(self, key: str) -> Optional[str]:
        """A metadata value of the file rendered as text (arrays as
        ``"[n items]"``), or None when the key is absent.

        >>> model.meta("general.architecture")
        'llama'
        """
        raw = encode_text("key", key)
        if b"\0" in raw:
            return None  # no GGUF key can contain NUL
        return self._m.meta(raw)

    # -- tokens ----------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True,
                 parse_special: bool = False) -> List[int]:
        """Text to token ids.

        Args:
            add_special: add BOS/EOS as the model asks.
            parse_special: special-token texts (``"<|im_start|>"``) become
                their tokens instead of being tokenized as plain text.
        """
        flags = 0
        if add_special:
            flags |= _hearth.TOKENIZE_ADD_SPECIAL
        if parse_special:
            flags |= _hearth.TOKENIZE_PARSE_SPECIAL
        return self._m.tokenize(encode_text("text", text), flags)

    def detokenize(self, ids: TokenIds, *, render_special: bool = False) -> str:
        """Token ids to text. Special tokens are skipped unless
        ``render_special``. Bytes that do not form valid UTF-8 (a multi-byte
        character cut between ids) come out as U+FFFD.

        Raises:
            hearth.InvalidArgumentError: an id outside [0, n_vocab), naming it.
        """
        raw = self.detokenize_bytes(ids, render_special=render_special)
        return raw.decode("utf-8", errors="replace")

    def detokenize_bytes(self, ids: TokenIds, *, render_special: bool = False) -> bytes:
        """Like :meth:`detokenize`, but the raw bytes."""
        flags = _hearth.DETOKENIZE_RENDER_SPECIAL if render_special else 0
        return self._m.detokenize(token_array(ids), flags)

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (may be part of a UTF-8 character).

        Raises:
            hearth.OutOfRangeError: `token` is not in [0, n_vocab).
        """
        t = _token_id(token)
        raw = self._m.token_bytes(t) if t is not None else None
        if raw is None:
            from hearth.errors import OutOfRangeError

            raise OutOfRangeError(f"token id {token} is outside [0, {self.n_vocab})")
        return raw

    def is_eog(self, token: int) -> bool:
        """True if `token` ends generation (EOS, EOT, ``<|im_end|>`` …)."""
        t = _token_id(token)
        return t is not None and self._m.is_eog(t)

    def chat_format(
        self,
        messages: Sequence[Union[Mapping[str, str], Tuple[str, str]]],
        *,
        add_generation_prompt: bool = True,
    ) -> str:
        """Renders a conversation in the model's chat format.

        The format is detected from the file's ``tokenizer.chat_template``,
        else from its architecture (Gemma, ChatML, Llama 3, Llama 2, DeepSeek-R1).

        Args:
            messages: ``{"role": ..., "content": ...}`` dicts or
                ``(role, content)`` pairs; role is "system", "user" or
                "assistant" ("model" is an alias).
            add_generation_prompt: open the assistant's turn at the end.

        Returns:
            Text with special-token markers and no BOS, to show or log. To
            generate a reply, pass the messages themselves as the prompt
            (``s.generate(history, reuse_prefix=True)``): tokenizing this text
            with ``parse_special=True`` would also turn a message that spells
            ``"<|im_end|>"`` into that control token.

        Raises:
            hearth.NotFoundError: the model has no known chat format.
        """
        raw = self._m.chat_format(message_pairs(messages), bool(add_generation_prompt))
        return raw.decode("utf-8", errors="replace")

    def chat_tokenize(
        self,
        messages: Sequence[Union[Mapping[str, str], Tuple[str, str]]],
        *,
        add_generation_prompt: bool = True,
    ) -> List[int]:
        """The token ids of a conversation in the model's chat format (BOS as
        the model asks): the format's markup becomes control tokens, what the
        messages say is always plain text. These are the ids
        ``generate(messages)`` feeds.

        Raises:
            hearth.NotFoundError: the model has no known chat format.
            hearth.InvalidArgumentError: an unknown role, or text that is not
                valid UTF-8.
        """
        return self._m.chat_tokenize(message_pairs(messages), bool(add_generation_prompt))

    # -- generation ------------------------------------------------------------

    def session(
        self,
        *,
        ctx: Optional[int] = None,
        batch: Optional[int] = None,
        threads: Optional[int] = None,
        adapters: Optional[AdapterSpec] = None,
        kv_type: Optional[str] = None,
    ) -> Session:
        """A new :class:`Session` for multi-turn use (see there for the args)."""
        return Session(self, ctx=ctx, batch=batch, threads=threads, adapters=adapters,
                       kv_type=kv_type)

    # -- adapters --------------------------------------------------------------

    def load_adapter(self, path: PathLike, *, ignore_base: bool = False) -> Adapter:
        """Loads a LoRA adapter for this model.

        Args:
            path: a PEFT directory (``adapter_config.json`` and
                ``adapter_model.safetensors``), either of those two files, or
                a GGUF LoRA file.

        Returns:
            A :class:`hearth.Adapter` to pass as ``adapters=`` to
            :meth:`generate`, :meth:`stream`, :meth:`session` or
            :meth:`Session.set_adapters`. It keeps this model alive.

        Everything is checked against the model first: the base architecture,
        every target weight present, shapes, ranks, complete (A, B) pairs,
        alpha finite and non-zero. An adapter hearth trained records its base
        model's weights fingerprint and is refused on any other base unless
        ``ignore_base=True``. The GIL is released while it loads.

        Raises:
            hearth.NotFoundError: no such file or directory.
            hearth.InvalidArgumentError: the adapter is malformed or does not
                fit this model (the message names the file and the tensor).
        """
        return Adapter._load(self, path, ignore_base)

    def load_dataset(self, path: PathLike, *, max_tokens: Optional[int] = None,
                     truncate: bool = False) -> Dataset:
        """Reads training data (JSONL) and tokenizes it for this model.

        Each line is ``{"text": ...}`` (every token trained),
        ``{"prompt": ..., "completion": ...}`` (the completion trained) or
        ``{"messages": [{"role": ..., "content": ...}, ...]}`` (rendered in
        this model's chat format; each assistant turn trained, its
        end-of-turn marker included). Text and completions end with EOS. Text
        in a record is never parsed for special tokens. docs/training-data.md.

        Args:
            max_tokens: the longest an example may be; None uses the model's
                training context.
            truncate: cut longer examples at ``max_tokens`` instead of failing.

        Raises:
            hearth.NotFoundError: no such file.
            hearth.InvalidArgumentError: a record is malformed, too long, or
                has nothing to train (the message names the file and line).
        """
        return Dataset._load(self, path, max_tokens, truncate)

    def trainer(self, data: Union[Dataset, PathLike], **options: Any) -> "Trainer":
        """A :class:`hearth.Trainer` that trains a LoRA adapter for this model.

        Args:
            data: a JSONL path (read as :meth:`load_dataset` does, with ``ctx``
                as ``max_tokens``) or a :class:`hearth.Dataset` of this model.
            rank: LoRA r (16). alpha: lora_alpha (32.0); the scale is
                alpha / rank, or alpha / sqrt(rank) with ``rslora=True``.
            targets: projections to adapt, a str "q,k,v" or an iterable
                (default all seven: q, k, v, o, gate, up, down; "all").
            epochs: passes over the training split (1).
            lr: peak learning rate (2e-4). schedule: "linear" (default),
                "cosine" or "constant" after ``warmup`` steps (0).
            batch, grad_accum: examples per micro-batch (1) and micro-batches
                per optimizer step (1).
            ctx, truncate: the longest example when ``data`` is a path
                (default the model's context) and whether to cut longer ones.
            eval_split: fraction held out for the eval loss, [0, 0.5] (0).
            seed: A's init, the split and the shuffle (42).
            clip: global gradient-norm clipping, 0 = off (1.0).
            weight_decay, betas, eps: AdamW's (0, (0.9, 0.999), 1e-8).
            threads: CPU threads; None uses the model's.
            init_adapter: continue training this adapter (a PEFT directory
                or GGUF LoRA for this model, with the same targets, rank and
                alpha) instead of starting fresh; None (default) starts fresh.
            lora_dropout: PEFT's lora_dropout, [0, 1) (0): while training,
                each LoRA term reads its input through dropout; the masks
                follow from the seed, so runs and resumed runs repeat.
            bf16: mixed precision (False): the base model's products round
                activations and weights to bfloat16 and accumulate in F32
                (LoRA weights, gradients and AdamW stay F32), several times
                faster where the CPU has AVX512-BF16 or AMX; elsewhere F32.

        The trainer copies the examples and uploads fresh LoRA tensors (A as
        PEFT initialises it, B = 0) with the GIL released.

        Raises:
            TypeError: an option of the wrong type.
            hearth.InvalidArgumentError: an option out of range, malformed
                data, a target the model lacks, nothing to train.
        """
        from hearth._trainer import Trainer

        return Trainer._create(self, data, **options)

    def export_merged(
        self,
        path: PathLike,
        adapters: AdapterSpec,
        *,
        merged_type: Optional[str] = None,
    ) -> None:
        """Writes a standalone GGUF model with the adapters merged in.

        Every targeted weight becomes ``W + sum(scale * factor * B A)``; the
        metadata and every other tensor are copied unchanged, so the result
        loads like any model and needs no adapter at run time. The file is
        written under a temporary name and renamed when complete. The GIL is
        released while it runs.

        Args:
            path: the ``.gguf`` file to write.
            adapters: as in :meth:`generate`: adapters loaded for this model,
                or ``(adapter, scale)`` pairs.
            merged_type: type of the merged tensors: ``"f32"``, ``"f16"``,
                ``"q8_0"``, or None for the base tensor's own type when it is
                F32/F16/BF16, else Q8_0 (hearth does not re-quantize to
                K-quants).

        Raises:
            hearth.InvalidArgumentError: an adapter loaded for another model
                or only inspected, or a bad `merged_type`.
            hearth.Error: the file cannot be written (the message names it).
        """
        raw_path = _fspath_bytes("path", path)
        if adapters is None:
            raise TypeError("adapters must be an iterable of hearth.Adapter or (Adapter, scale) "
                            "pairs, not None")
        pairs = adapter_pairs(adapters)
        if merged_type is not None:
            if not isinstance(merged_type, str):
                raise TypeError(
                    f"merged_type must be a str or None, not {type(merged_type).__name__}")
            if "\0" in merged_type:
                raise InvalidArgumentError(
                    f"merged_type contains a NUL character: {merged_type!r}")
        _hearth.export_merged(self._m, c_pairs(pairs), raw_path, merged_type)

    @with_generate_args
    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: Optional[int] = 256,
        stop: Union[str, Sequence[str], None] = None,
        sampling: Optional[SamplingParams] = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        min_p: Optional[float] = None,
        repeat_penalty: Optional[float] = None,
        presence_penalty: Optional[float] = None,
        frequency_penalty: Optional[float] = None,
        penalty_last_n: Optional[int] = None,
        seed: Optional[int] = None,
        add_special: Optional[bool] = None,
        parse_special: bool = False,
        adapters: Optional[AdapterSpec] = None,
        ban: Union[str, Sequence[str], None] = None,
        constraint: Optional[Tuple[str, str]] = None,
    ) -> str:
        """Generates a completion of `prompt` in a fresh session and returns it.

        Each call starts from an empty context; for a conversation use
        :meth:`session`. The GIL is released while it runs.

        {generate_args}
        """
        req = make_request(prompt, max_tokens, stop, sampling, add_special, parse_special,
                           overrides(locals()), False, ban, constraint)
        pairs = adapter_pairs(adapters)
        with Session(self, adapters=pairs) as s:
            return s._generate(req)

    @with_generate_args
    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: Optional[int] = 256,
        stop: Union[str, Sequence[str], None] = None,
        sampling: Optional[SamplingParams] = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        min_p: Optional[float] = None,
        repeat_penalty: Optional[float] = None,
        presence_penalty: Optional[float] = None,
        frequency_penalty: Optional[float] = None,
        penalty_last_n: Optional[int] = None,
        seed: Optional[int] = None,
        add_special: Optional[bool] = None,
        parse_special: bool = False,
        adapters: Optional[AdapterSpec] = None,
        ban: Union[str, Sequence[str], None] = None,
        constraint: Optional[Tuple[str, str]] = None,
    ) -> Iterator[str]:
        """Like :meth:`generate`, but yields text pieces as they are made.

        Arguments are checked now; generation runs on a worker thread from the
        first ``next()``. Breaking out of the loop stops it. With `adapters`,
        the session is made and the adapters attached now too, so an adapter
        that does not fit raises here rather than at the first ``next()``.

        {generate_args}
        """
        req = make_request(prompt, max_tokens, stop, sampling, add_special, parse_special,
                           overrides(locals()), False, ban, constraint)
        pairs = adapter_pairs(adapters)
        session = Session(self, adapters=pairs) if pairs else None
        return self._stream(req, session)

    def _stream(self, req: Request, session: Optional[Session]) -> Iterator[str]:
        with session if session is not None else Session(self) as s:
            yield from s._stream(req)

    def __repr__(self) -> str:
        i = self._info
        return (f"<hearth.Model {os.path.basename(self.path)!r} {i.architecture} "
                f"{i.n_params:,} params, {i.quantization}, on {i.device}>")


def _token_id(token: object) -> Optional[int]:
    """`token` as an int32, or None when it cannot be one (→ out of range)."""
    import numbers

    if isinstance(token, bool) or not isinstance(token, numbers.Integral):
        raise TypeError(f"token must be an int, not {type(token).__name__}")
    t = int(token)
    return t if -(2**31) <= t < 2**31 else None
