"""The batching engine: many requests over one model (``hearth_engine_*``).

An :class:`Engine` runs on its own thread. Each step advances every running
request by one token in one graph over the whole batch (continuous
batching), so N concurrent requests cost about one pass over the weights per
token instead of N. Each request may use its own LoRA adapters and scales.

A submitted :class:`Request` is read as a stream of :class:`RequestEvent`
objects, with a plain ``for`` loop (blocking, the GIL released while it
waits) or ``async for`` (never blocks the event loop)::

    with hearth.Engine(model, n_seq=8) as engine:
        req = engine.submit("Once upon a time", max_tokens=64, temperature=0)
        for ev in req:
            print(ev.text, end="", flush=True)
        print(req.result.finish_reason)

        async def main():
            reqs = [engine.submit(p, max_tokens=32) for p in prompts]
            return await asyncio.gather(*(r.atext() for r in reqs))
            # or: results = await asyncio.gather(*reqs)   (RequestResult each)
"""

from __future__ import annotations

import asyncio
import numbers
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from hearth import _hearth
from hearth._adapter import Adapter, _scale
from hearth._request import (
    SAMPLING_FIELDS,
    TokenIds,
    check_count,
    check_kv_type,
    encode_text,
    message_pairs,
    sampling_params,
    stop_strings,
    token_array,
)
from hearth._types import SamplingParams, StopReason
from hearth.errors import InvalidArgumentError, ResourceExhaustedError, _from_status

if TYPE_CHECKING:
    from hearth._model import Model

_INT32_MAX = 2**31 - 1
_MAX_TOP_LOGPROBS = 20

# The kinds of prompt _hearth.Engine.submit takes.
_TEXT, _TOKENS, _MESSAGES = 0, 1, 2
# hearth_event_kind
_EVENT_DONE = 1

#: What a request's ``adapters=`` takes: a mapping {adapter: scale}, or an
#: iterable of adapters (scale 1.0) or (adapter, scale) pairs; an adapter is
#: a :class:`hearth.Adapter` given to the engine or its index there.
RequestAdapters = Union[Mapping[Union[Adapter, int], float],
                        Iterable[Union[Adapter, int, Tuple[Union[Adapter, int], float]]]]


def _stop_reason(value: int) -> StopReason:
    try:
        return StopReason(value)
    except ValueError:  # a reason added by a newer libhearth
        return StopReason.ERROR


@dataclass(frozen=True)
class RequestEvent:
    """One event of a request (``hearth_request_event``).

    A request yields a token event per generated token and then exactly one
    final event (``done`` is True, ``finish_reason`` set).

    Attributes:
        text: text released by this event: whole UTF-8 characters, with
            anything that could still become a stop string held back until
            decided (so it may be ``""``, or the text of earlier tokens). The
            final event releases what was held back; a stop string itself is
            never released.
        token: the generated token id; None in the final event. An
            end-of-generation token is not reported.
        logprob: with ``logprobs=True``, the token's natural-log probability
            under the model (before penalties, temperature and top-k/p);
            else None.
        top_logprobs: with ``top_logprobs=n``, the n most likely tokens as
            ``(token, logprob)`` pairs, most likely first.
        finish_reason: in the final event, why the request ended; else None.
        n_prompt_tokens, n_cached_tokens, n_generated_tokens: counts so far:
            prompt tokens, of which reused from the KV cache of an earlier
            request (prefix reuse), and generated tokens.
        first_token_seconds: seconds from submit to the first generated
            token (0 before it).
    """

    text: str
    token: Optional[int]
    logprob: Optional[float]
    top_logprobs: Tuple[Tuple[int, float], ...]
    finish_reason: Optional[StopReason]
    n_prompt_tokens: int
    n_cached_tokens: int
    n_generated_tokens: int
    first_token_seconds: float

    @property
    def done(self) -> bool:
        """True for the request's final event."""
        return self.finish_reason is not None


@dataclass(frozen=True)
class RequestResult:
    """A finished request: all its text and tokens, and why it ended."""

    text: str
    tokens: Tuple[int, ...]
    finish_reason: StopReason
    n_prompt_tokens: int
    n_cached_tokens: int
    n_generated_tokens: int
    first_token_seconds: float


@dataclass(frozen=True)
class EngineStats:
    """Counters of an engine since it was made, and its state now
    (``hearth_engine_stats``)."""

    n_waiting: int  #: submitted, not yet holding a slot
    n_running: int  #: holding a slot
    n_seq: int  #: slots
    requests_submitted: int
    requests_finished: int  #: ended for any reason, cancelled and failed included
    requests_cancelled: int
    requests_failed: int
    prompt_tokens: int  #: computed
    cached_prompt_tokens: int  #: reused from the KV cache instead
    generated_tokens: int
    steps: int
    kv_tokens_used: int  #: tokens held by running requests
    kv_tokens_capacity: int  #: n_seq * n_ctx
    step_seconds: float  #: time spent computing steps


class Request:
    """A request submitted to an :class:`Engine` (made by
    :meth:`Engine.submit`).

    Iterate it (``for`` or ``async for``) for its :class:`RequestEvent`
    objects; the last one has ``done`` set. A failed request (the final event
    carries an error) raises the matching :class:`hearth.Error` from the
    iterator instead of yielding it. Events are queued by the engine's
    thread as they come, so a slow reader never slows the batch down.

    A request is read by one consumer; :meth:`cancel` may be called from any
    thread. Dropping an unfinished request without reading it to the end
    cancels it.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use hearth.Engine.submit(...) to make a hearth.Request")

    @classmethod
    def _make(cls, handle: Any, engine: "Engine", logprobs: bool) -> "Request":
        self = cls.__new__(cls)
        self._h = handle
        self._engine = engine
        self._logprobs = logprobs
        self._pieces: List[str] = []
        self._tokens: List[int] = []
        self._done = False
        self._result: Optional[RequestResult] = None
        self._error: Optional[BaseException] = None
        return self

    @property
    def id(self) -> int:
        """The engine's id of the request (never 0)."""
        return self._h.id

    @property
    def engine(self) -> "Engine":
        return self._engine

    @property
    def done(self) -> bool:
        """True once the final event has been read."""
        return self._done

    @property
    def result(self) -> Optional[RequestResult]:
        """All the text and tokens and the finish reason, once the final
        event has been read (None before, and for a failed request); see
        :meth:`wait` to read up to it."""
        return self._result

    @property
    def error(self) -> Optional[BaseException]:
        """The :class:`hearth.Error` the request failed with, once read."""
        return self._error

    def cancel(self) -> bool:
        """Ends the request: its final event (``StopReason.CANCELLED``) comes
        within one engine step and its slot is free for the next request.

        Returns:
            True if the request was still running or waiting; False if it had
            already ended (or the engine is closed). Events already queued
            are still read before the final one.
        """
        return self._h.cancel()

    # -- reading ---------------------------------------------------------------

    def _take(self, raw: Tuple[Any, ...]) -> RequestEvent:
        (kind, text, token, logprob, top, reason, status, message, n_prompt, n_cached, n_gen,
         first_token_seconds) = raw
        done = kind == _EVENT_DONE
        ev = RequestEvent(
            text=text,
            token=None if done else token,
            logprob=logprob if self._logprobs and not done else None,
            top_logprobs=tuple((int(t), float(p)) for t, p in top),
            finish_reason=_stop_reason(reason) if done else None,
            n_prompt_tokens=n_prompt,
            n_cached_tokens=n_cached,
            n_generated_tokens=n_gen,
            first_token_seconds=first_token_seconds,
        )
        self._pieces.append(text)
        if not done:
            self._tokens.append(token)
            return ev
        self._done = True
        if status != 0:
            self._error = _from_status(status, message)
            raise self._error
        assert ev.finish_reason is not None
        self._result = RequestResult("".join(self._pieces), tuple(self._tokens),
                                     ev.finish_reason, n_prompt, n_cached, n_gen,
                                     first_token_seconds)
        return ev

    def __iter__(self) -> Iterator[RequestEvent]:
        return self

    def __next__(self) -> RequestEvent:
        """The next event, waiting for it with the GIL released (Ctrl-C
        interrupts the wait on the main thread)."""
        if self._done:
            raise StopIteration
        raw = self._h.next()
        if raw is None:  # pragma: no cover - the final event was read elsewhere
            self._done = True
            raise StopIteration
        return self._take(raw)

    def __aiter__(self) -> AsyncIterator[RequestEvent]:
        return self

    async def __anext__(self) -> RequestEvent:
        """The next event; the event loop runs while it waits (the engine's
        thread makes a pipe readable, which the loop watches)."""
        if self._done:
            raise StopAsyncIteration
        raw = self._h.poll()
        while raw is None:
            await self._readable()
            raw = self._h.poll()
        return self._take(raw)

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = self._h.fileno()
        except ResourceExhaustedError:  # out of file descriptors: wait on a thread
            fd = -1
        if fd >= 0:
            ready = loop.create_future()

            def wake() -> None:
                if not ready.done():
                    ready.set_result(None)

            try:
                loop.add_reader(fd, wake)
            except NotImplementedError:  # a loop without add_reader (Windows' proactor)
                pass
            else:
                try:
                    await ready
                finally:
                    loop.remove_reader(fd)
                return
        # Short waits, so a cancelled task leaves no thread blocked for long.
        await loop.run_in_executor(None, self._h.wait, 0.1)

    def wait(self) -> RequestResult:
        """Reads the remaining events (blocking, the GIL released) and
        returns :attr:`result`. ``await request`` is the same for asyncio.

        Raises:
            hearth.Error: the request failed (also when that was already
                raised while iterating).
        """
        for _ in self:
            pass
        return self._final()

    def __await__(self) -> Generator[Any, None, RequestResult]:
        return self._await().__await__()

    async def _await(self) -> RequestResult:
        async for _ in self:
            pass
        return self._final()

    def _final(self) -> RequestResult:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def text(self) -> str:
        """Reads the remaining events (blocking) and returns their text. Of a
        request read from the start that is all of it, as in ``.result.text``.

        Raises:
            hearth.Error: the request failed.
        """
        return "".join(ev.text for ev in self)

    async def atext(self) -> str:
        """Like :meth:`text`, without blocking the event loop."""
        return "".join([ev.text async for ev in self])

    def __repr__(self) -> str:
        if self._result is not None:
            state = f"done {self._result.finish_reason.name}"
        elif self._error is not None:
            state = f"failed {type(self._error).__name__}"
        else:
            state = "running"
        return f"<hearth.Request id={self.id} {state}>"


class Engine:
    """Serves many requests from one model, batched (``hearth_engine``).

    Args:
        model: the :class:`hearth.Model` to run.
        n_seq: requests computed together (KV cache slots), 1..256.
        n_ctx: tokens per request, prompt and reply; 0 = min(model's, 4096).
        max_step_tokens: tokens one step carries, all requests together
            (at least ``n_seq``); 0 = 256. Long prompts are computed in
            chunks of what is left after every running request's next token.
        n_threads: CPU threads; 0 = the model's.
        max_waiting: requests that may wait for a slot; 0 = 1024. Beyond it
            :meth:`submit` raises :class:`hearth.ResourceExhaustedError`.
        adapters: the LoRA adapters requests may use (each loaded for
            `model` with :meth:`hearth.Model.load_adapter`), at most 64; a
            request names them by object or by index into this sequence.
        kv_block_size: > 0 makes the KV cache paged: requests take pages of
            this many positions from one pool as they grow, so requests of
            any length share one budget (``n_ctx`` is rounded down to a
            multiple). 0: ``n_seq`` fixed slots of ``n_ctx`` positions.
        kv_pages: the pool's pages; 0 = as many as ``n_seq`` full contexts
            need. A request waits until the pool can hold its prompt plus
            ``max_tokens`` (its whole ``n_ctx`` when ``max_tokens`` is None)
            besides what running requests may still take; one that never
            could is refused by :meth:`submit`. Pages of finished requests
            stay as prefix cache until needed, and requests share the whole
            pages of a common prompt start, running ones included.
        kv_type: what the KV cache stores: ``"f32"`` (exact) or ``"f16"``
            (half the memory, so twice the requests or context per byte).

    The engine starts its own thread at once. It is a context manager:
    :meth:`close` (or leaving the ``with`` block) ends every unfinished
    request with ``StopReason.CANCELLED`` and frees the engine. An engine
    may be shared by threads: :meth:`submit`, :meth:`Request.cancel` and
    :meth:`stats` may be called from any of them (they release the GIL).

    Raises:
        hearth.InvalidArgumentError: a bad parameter, or an adapter loaded
            for another model or only inspected.
    """

    def __init__(
        self,
        model: "Model",
        *,
        n_seq: Optional[int] = 8,
        n_ctx: Optional[int] = 0,
        max_step_tokens: Optional[int] = 0,
        n_threads: Optional[int] = 0,
        max_waiting: Optional[int] = 0,
        adapters: Sequence[Adapter] = (),
        kv_block_size: Optional[int] = 0,
        kv_pages: Optional[int] = 0,
        kv_type: Optional[str] = None,
    ) -> None:
        from hearth._model import Model  # the two files refer to each other

        if not isinstance(model, Model):
            raise TypeError(f"model must be a hearth.Model, not {type(model).__name__}")
        if adapters is None:
            adapters = ()
        if isinstance(adapters, (str, bytes, bytearray, Adapter, Mapping)) or not isinstance(
                adapters, Iterable):
            raise TypeError(f"adapters must be a sequence of hearth.Adapter, "
                            f"not {type(adapters).__name__}")
        adapter_list = list(adapters)
        for i, a in enumerate(adapter_list):
            if not isinstance(a, Adapter):
                raise TypeError(f"adapters[{i}] must be a hearth.Adapter, not {type(a).__name__}")
            if not a.bound:
                raise InvalidArgumentError(
                    f"adapters[{i}] was only inspected; load it with model.load_adapter()")
        self._model = model
        self._adapters: Tuple[Adapter, ...] = tuple(adapter_list)
        self._e = _hearth.Engine(model._m, check_count("n_seq", n_seq),
                                 check_count("n_ctx", n_ctx),
                                 check_count("max_step_tokens", max_step_tokens),
                                 check_count("n_threads", n_threads),
                                 check_count("max_waiting", max_waiting),
                                 [a._a for a in self._adapters],
                                 check_count("kv_block_size", kv_block_size),
                                 check_count("kv_pages", kv_pages), check_kv_type(kv_type))

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Stops the engine's thread and frees it. Every request not finished
        gets its final event (``StopReason.CANCELLED``) first, so readers see
        their requests end. Idempotent."""
        self._e.close()

    @property
    def closed(self) -> bool:
        return self._e.closed

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model(self) -> "Model":
        return self._model

    @property
    def adapters(self) -> Tuple[Adapter, ...]:
        """The adapters requests may use, in index order."""
        return self._adapters

    # -- requests ------------------------------------------------------------------

    def submit(
        self,
        prompt: Union[str, Sequence[Any], None] = None,
        *,
        tokens: Optional[TokenIds] = None,
        messages: Optional[Sequence[Any]] = None,
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
        adapters: Optional[RequestAdapters] = None,
        logprobs: bool = False,
        top_logprobs: int = 0,
    ) -> Request:
        """Queues a request and returns it at once; read it by iterating.

        Args:
            prompt: text (tokenized with BOS etc. as the model asks, see
                `add_special`), or a conversation as ``messages`` takes it.
            tokens: the prompt as token ids, used as given.
            messages: a conversation (``{"role", "content"}`` dicts or
                ``(role, content)`` pairs), rendered in the model's chat
                format with the assistant's turn opened. Exactly one of
                `prompt`, `tokens` and `messages` is given.
            max_tokens: most tokens to generate, at least 1; None runs until
                an end-of-generation token or the request's context is full.
            stop: a string or strings that end the request when they appear;
                they are not part of the text.
            sampling, temperature, top_k, top_p, min_p, repeat_penalty,
            presence_penalty, frequency_penalty, penalty_last_n, seed: as in
                :meth:`hearth.Model.generate`; ``temperature=0`` is greedy,
                and a request's output does not depend on the others in the
                batch.
            add_special, parse_special: how a text prompt is tokenized
                (default: BOS etc. added, special-token texts not parsed).
            adapters: LoRA adapters for this request: a mapping
                ``{adapter: scale}`` or an iterable of adapters (scale 1.0)
                or ``(adapter, scale)`` pairs, where an adapter is one given
                to the engine or its index there. None runs the base model.
            logprobs: token events carry the token's log-probability.
            top_logprobs: and the n most likely alternatives, 0..20 (n > 0
                implies ``logprobs``).

        Raises:
            TypeError: an argument of the wrong type.
            hearth.InvalidArgumentError: a bad value: no prompt or two,
                token ids outside the vocabulary, a prompt that does not fit
                in ``n_ctx``, bad sampling values, an adapter the engine does
                not have.
            hearth.ResourceExhaustedError: ``max_waiting`` requests already
                wait.
            hearth.FailedPreconditionError: the engine is closed.
        """
        given = [name for name, v in (("prompt", prompt), ("tokens", tokens),
                                      ("messages", messages)) if v is not None]
        if len(given) != 1:
            raise InvalidArgumentError(
                "give exactly one of prompt, tokens and messages" +
                (f" (got {', '.join(given)})" if given else ""))
        if isinstance(prompt, (list, tuple)):
            messages, prompt = prompt, None
        raw: Any
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a str or a conversation (a list of messages), "
                                f"not {type(prompt).__name__}")
            kind, raw = _TEXT, encode_text("prompt", prompt)
        elif tokens is not None:
            kind, raw = _TOKENS, token_array(tokens)
        else:
            kind, raw = _MESSAGES, message_pairs(messages)
        if add_special is not None and not isinstance(add_special, bool):
            raise TypeError(f"add_special must be a bool or None, not {type(add_special).__name__}")
        if kind != _TEXT and (add_special is not None or parse_special):
            raise TypeError("add_special and parse_special apply to a text prompt only")
        flags = 0
        if add_special is None or add_special:
            flags |= _hearth.TOKENIZE_ADD_SPECIAL
        if parse_special:
            flags |= _hearth.TOKENIZE_PARSE_SPECIAL

        if max_tokens is None:
            n = -1
        else:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
                raise TypeError(
                    f"max_tokens must be an int or None, not {type(max_tokens).__name__}")
            n = int(max_tokens)
            if not 1 <= n <= _INT32_MAX:
                raise InvalidArgumentError(
                    f"max_tokens = {n} is outside [1, {_INT32_MAX}] (use None for no limit)")
        if not isinstance(logprobs, bool):
            raise TypeError(f"logprobs must be a bool, not {type(logprobs).__name__}")
        n_top = check_count("top_logprobs", top_logprobs, _MAX_TOP_LOGPROBS)
        want_logprobs = logprobs or n_top > 0
        local = locals()
        params = sampling_params(sampling, {k: local[k] for k in SAMPLING_FIELDS})
        pairs = self._adapter_indices(adapters)
        handle = self._e.submit(kind, raw, flags, n, params, stop_strings(stop), pairs,
                                want_logprobs, n_top)
        return Request._make(handle, self, want_logprobs)

    def generate(self, prompt: Union[str, Sequence[Any], None] = None, **kwargs: Any) -> str:
        """Submits a request (arguments as :meth:`submit`) and returns its
        whole text, waiting with the GIL released."""
        return self.submit(prompt, **kwargs).text()

    def _adapter_indices(self, adapters: Optional[RequestAdapters]) -> List[Tuple[int, float]]:
        if adapters is None:
            return []
        items: List[Tuple[Any, Any]]
        if isinstance(adapters, Mapping):
            items = list(adapters.items())
        elif isinstance(adapters, (str, bytes, bytearray, Adapter)) or not isinstance(
                adapters, Iterable):
            raise TypeError(f"adapters must be a mapping {{adapter: scale}} or an iterable of "
                            f"adapters or (adapter, scale) pairs, not {type(adapters).__name__}")
        else:
            items = []
            for item in adapters:
                if isinstance(item, (tuple, list)) and len(item) == 2:
                    items.append((item[0], item[1]))
                else:
                    items.append((item, 1.0))
        out = []
        for i, (which, scale) in enumerate(items):
            out.append((self._adapter_index(i, which), _scale(i, scale)))
        return out

    def _adapter_index(self, i: int, which: object) -> int:
        if isinstance(which, Adapter):
            for j, a in enumerate(self._adapters):
                if a is which:
                    return j
            raise InvalidArgumentError(
                f"adapters[{i}]: {which!r} is not one of this engine's adapters "
                f"(give it to hearth.Engine(..., adapters=[...]))")
        if isinstance(which, bool) or not isinstance(which, numbers.Integral):
            raise TypeError(f"adapters[{i}] must be a hearth.Adapter or an index, "
                            f"not {type(which).__name__}")
        j = int(which)
        if not 0 <= j < len(self._adapters):
            raise InvalidArgumentError(f"adapters[{i}]: index {j} is outside "
                                       f"[0, {len(self._adapters)}) (the engine's adapters)")
        return j

    # -- state -------------------------------------------------------------------

    def stats(self) -> EngineStats:
        """Counters since the engine was made, and its state now.

        Raises:
            hearth.FailedPreconditionError: the engine is closed.
        """
        return EngineStats(**self._e.stats())

    def __repr__(self) -> str:
        if self.closed:
            return "<hearth.Engine closed>"
        s = self.stats()
        return (f"<hearth.Engine n_seq={s.n_seq} running={s.n_running} waiting={s.n_waiting} "
                f"adapters={len(self._adapters)}>")


__all__ = ["Engine", "Request", "RequestEvent", "RequestResult", "EngineStats"]
