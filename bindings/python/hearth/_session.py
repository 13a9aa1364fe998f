"""Sessions: one conversation's state (KV cache), for multi-turn use.

A session belongs to one thread at a time. Calling it from a second thread
while a call is running, or while a :meth:`Session.stream` over it is still
open, raises :class:`hearth.FailedPreconditionError` instead of racing.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import numpy as np

from hearth import _hearth
from hearth._adapter import Adapter, AdapterSpec, adapter_pairs, c_pairs
from hearth._request import (
    SAMPLING_FIELDS,
    Request,
    TokenIds,
    check_count,
    check_kv_type,
    make_request,
    token_array,
)
from hearth._types import GenerationResult, SamplingParams

if TYPE_CHECKING:
    from hearth._model import Model

_F = TypeVar("_F", bound=Callable[..., Any])

#: A prompt: text, or a conversation of {"role", "content"} dicts or (role, content) pairs.
Prompt = Union[str, Sequence[Union[Mapping[str, str], Tuple[str, str]]]]

GENERATE_ARGS = """
        Args:
            prompt: text to feed before generating. Into an empty session
                it gets the model's BOS etc. (see ``add_special``). Or a
                conversation: a list of ``{"role": ..., "content": ...}``
                dicts or ``(role, content)`` pairs, rendered in the model's
                chat format with the assistant's turn opened; what the
                messages say never becomes control tokens, and
                ``add_special``/``parse_special`` do not apply.
            max_tokens: most tokens to generate; 0 generates nothing; None
                runs until an end-of-generation token or a full context.
            stop: a string or strings that end generation when they appear;
                they are not part of the returned text.
            sampling: a :class:`hearth.SamplingParams`; the keywords below
                override single fields of it (or of the defaults).
            temperature, top_k, top_p, min_p, repeat_penalty,
            presence_penalty, frequency_penalty, penalty_last_n, seed:
                sampling fields, see :class:`hearth.SamplingParams`.
                ``temperature=0`` is greedy and deterministic.
            add_special: add BOS/EOS as the model asks. None (default): only
                when the session is empty.
            parse_special: turn special-token texts in the text prompt
                (e.g. ``"<|im_start|>"``) into their tokens. For a chat,
                pass the conversation instead: parsing rendered text also
                parses what users wrote.
            reuse_prefix: (sessions only) `prompt` is the whole conversation
                so far (typically the conversation list, each turn): the
                session keeps the longest token prefix it already holds and
                computes only the rest. False (default): `prompt` is appended.
            ban: a string or strings the generated text must never
                contain (the banned-strings extension plugin masks every
                token that would complete one).
            constraint: ``(plugin, config)``: the logits mask of any
                extension plugin the runtime loaded, with its configuration.
                A plugin that is not loaded raises NotFoundError.
            adapters: (models only; sessions use :meth:`Session.set_adapters`)
                LoRA adapters for this call: an iterable of
                :class:`hearth.Adapter` (scale 1.0) or ``(adapter, scale)``
                pairs, loaded for this model with
                :meth:`hearth.Model.load_adapter`. None runs the base model.

        Raises:
            hearth.InvalidArgumentError: bad parameters, or a prompt that does
                not fit in the context.
            hearth.FailedPreconditionError: the session is busy or closed."""


def with_generate_args(func: _F) -> _F:
    """Puts the shared argument list into a generate()/stream() docstring."""
    func.__doc__ = (func.__doc__ or "").replace("{generate_args}", GENERATE_ARGS.strip())
    return func


def overrides(values: Dict[str, Any]) -> Dict[str, Any]:
    return {k: values[k] for k in SAMPLING_FIELDS}


class Session:
    """A conversation with a model: its tokens and KV cache.

    Make one with :meth:`hearth.Model.session` (or ``Session(model)``) and use
    it as a context manager so its memory is freed at the end::

        with model.session(ctx=4096) as s:
            print(s.generate("Hello! Who are you?", max_tokens=64))
            print(s.generate(" And what can you do?", max_tokens=64))  # continues

    Args:
        model: the :class:`hearth.Model` to run.
        ctx: context length in tokens; None = min(model's, 4096).
        batch: tokens per prompt-processing step; None = 256.
        threads: CPU threads; None = the model's.
        adapters: LoRA adapters to attach, as in :meth:`set_adapters`.
        kv_type: what the KV cache stores: ``"f32"`` (None, exact) or
            ``"f16"`` (half the memory; k and v rounded as they are stored).

    Every generate()/stream()/feed() appends to the context, so later calls
    continue the conversation; :meth:`reset` forgets it. A session belongs to
    one thread at a time; make one session per thread (they may share a
    model).
    """

    def __init__(
        self,
        model: "Model",
        *,
        ctx: Optional[int] = None,
        batch: Optional[int] = None,
        threads: Optional[int] = None,
        adapters: Optional[AdapterSpec] = None,
        kv_type: Optional[str] = None,
    ) -> None:
        from hearth._model import Model  # the two files refer to each other

        if not isinstance(model, Model):
            raise TypeError(f"model must be a hearth.Model, not {type(model).__name__}")
        pairs = adapter_pairs(adapters)
        self._model = model
        self._adapters: Tuple[Tuple[Adapter, float], ...] = ()
        self._s = _hearth.Session(model._m, check_count("ctx", ctx), check_count("batch", batch),
                                  check_count("threads", threads), check_kv_type(kv_type))
        #: Figures of the last generate()/stream() on this session (None before).
        self.last_result: Optional[GenerationResult] = None
        if pairs:
            try:
                self._set_adapters(pairs)
            except BaseException:
                self._s.close()  # free the KV cache now, not at garbage collection
                raise

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        """Frees the session (its KV cache). Further calls raise
        :class:`hearth.FailedPreconditionError`. Idempotent."""
        self._s.close()

    @property
    def closed(self) -> bool:
        return self._s.closed

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ---------------------------------------------------------------

    @property
    def model(self) -> "Model":
        return self._model

    @property
    def n_past(self) -> int:
        """Tokens in the context so far."""
        return self._s.n_past()

    @property
    def n_ctx(self) -> int:
        """Context size in tokens."""
        return self._s.n_ctx()

    def reset(self) -> None:
        """Forgets the context (keeps the buffers and the adapters)."""
        self._s.reset()

    def truncate(self, n_past: int) -> None:
        """Keeps only the first `n_past` tokens of the context (rewinds a
        turn; free). Raises hearth.OutOfRangeError past the context."""
        self._s.truncate(check_count("n_past", n_past))

    # -- adapters --------------------------------------------------------------

    @property
    def adapters(self) -> Tuple[Tuple[Adapter, float], ...]:
        """The attached LoRA adapters as ``(adapter, scale)`` pairs."""
        return self._adapters

    def set_adapters(self, adapters: Optional[AdapterSpec]) -> None:
        """Replaces the session's LoRA adapters.

        Args:
            adapters: an iterable of :class:`hearth.Adapter` (scale 1.0) or
                ``(adapter, scale)`` pairs, each loaded for this session's
                model with :meth:`hearth.Model.load_adapter`; ``[]`` or None
                detaches all. Several adapters stack: their terms add up.

        When the set or any scale changes, the context is reset
        (:attr:`n_past` becomes 0): its KV cache was computed with other
        weights, so continuing from it would mix two models. Setting the same
        adapters and scales again keeps the context. Other sessions on the
        model are unaffected. The GIL is released while the session re-plans
        its compute graphs.

        Raises:
            TypeError: an item is neither an Adapter nor an (Adapter, scale)
                pair (the message names it).
            hearth.InvalidArgumentError: an adapter was loaded for another
                model or only inspected, or a scale is not finite. On error
                nothing changes.
            hearth.FailedPreconditionError: the session is busy or closed.
        """
        self._set_adapters(adapter_pairs(adapters))

    def _set_adapters(self, pairs: List[Tuple[Adapter, float]]) -> None:
        self._s.set_adapters(c_pairs(pairs))
        self._adapters = tuple(pairs)

    # -- tokens in, logits out -------------------------------------------------

    def feed(self, ids: TokenIds) -> None:
        """Runs token ids through the model, appending them to the context.

        Args:
            ids: a sequence of ints or a 1-D integer numpy array.

        Raises:
            hearth.InvalidArgumentError: an id outside [0, n_vocab) or a
                context overflow; the session is left unchanged.
        """
        self._s.feed(token_array(ids))

    def score(self, ids: TokenIds) -> np.ndarray:
        """Feeds `ids` like :meth:`feed` and scores them.

        Returns:
            float32 array of ``len(ids) - 1`` natural-log probabilities:
            element i is log P(ids[i + 1] | everything before it). Perplexity
            is ``exp(-mean(result))``. Slower than a feed (it computes logits
            at every position); afterwards :meth:`logits` is as after a feed.
        """
        arr = token_array(ids)
        out = np.empty(max(arr.size - 1, 0), dtype=np.float32)
        self._s.score(arr, out)
        return out

    def logits(self) -> np.ndarray:
        """The logits after the last token fed: a new float32 array of shape
        ``(n_vocab,)``.

        Raises:
            hearth.FailedPreconditionError: nothing has been fed yet.
        """
        out = np.empty(self._model.n_vocab, dtype=np.float32)
        self._s.logits(out)
        return out

    # -- text ----------------------------------------------------------------

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
        reuse_prefix: bool = False,
        ban: Union[str, Sequence[str], None] = None,
        constraint: Optional[Tuple[str, str]] = None,
    ) -> str:
        """Feeds `prompt`, generates, and returns the generated text.

        The prompt and the generated tokens stay in the session, so the next
        call continues from here. Figures land in :attr:`last_result`.

        {generate_args}
        """
        req = make_request(prompt, max_tokens, stop, sampling, add_special, parse_special,
                           overrides(locals()), reuse_prefix, ban, constraint)
        return self._generate(req)

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
        reuse_prefix: bool = False,
        ban: Union[str, Sequence[str], None] = None,
        constraint: Optional[Tuple[str, str]] = None,
    ) -> Iterator[str]:
        """Like :meth:`generate`, but yields the text piece by piece as it is
        generated (each piece is whole UTF-8 characters).

        Arguments are checked now; generation starts at the first ``next()``
        and runs on a worker thread without the GIL. Breaking out of the loop
        (or ``.close()``, or garbage collection of the generator) stops it
        within a token; the tokens generated so far stay in the session. While
        the generator is open the session is busy.

        {generate_args}
        """
        req = make_request(prompt, max_tokens, stop, sampling, add_special, parse_special,
                           overrides(locals()), reuse_prefix, ban, constraint)
        return self._stream(req)

    def _generate(self, req: Request) -> str:
        raw, result = self._s.generate(*req.c_args(lambda: self._s.n_past() == 0))
        self.last_result = GenerationResult._from_tuple(result)
        return raw.decode("utf-8", errors="replace")

    def _stream(self, req: Request) -> Iterator[str]:
        handle = self._s.stream(*req.c_args(lambda: self._s.n_past() == 0))
        try:
            while True:
                piece = handle.next()
                if piece is None:
                    break
                yield piece
        finally:
            handle.close()  # stops the worker if the reader left early
            result = handle.result()
            if result is not None:
                self.last_result = GenerationResult._from_tuple(result)

    def __repr__(self) -> str:
        if self.closed:
            return "<hearth.Session closed>"
        try:
            extra = f" adapters={len(self._adapters)}" if self._adapters else ""
            return f"<hearth.Session n_past={self.n_past} n_ctx={self.n_ctx}{extra}>"
        except Exception:  # busy with a stream
            return "<hearth.Session busy>"
