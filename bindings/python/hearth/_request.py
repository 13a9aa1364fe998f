"""Turning Python arguments into what the extension takes.

The extension module is strict (bytes, int32 arrays, C-sized ints); this file
is where Python values are checked and converted, so that a wrong type is a
TypeError and a wrong value a :class:`hearth.InvalidArgumentError` naming the
argument, before anything reaches C.
"""

from __future__ import annotations

import numbers
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from hearth import _hearth
from hearth._types import SamplingParams
from hearth.errors import InvalidArgumentError

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_UINT32_MAX = 2**32 - 1

#: The sampling fields that generate()/stream() take as keywords.
SAMPLING_FIELDS = (
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "penalty_last_n",
    "seed",
)

TokenIds = Union[Sequence[int], "np.ndarray"]


def check_count(name: str, value: Optional[int], hi: int = _UINT32_MAX) -> int:
    """An optional non-negative count for a uint32 field; None → 0 (the C default)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    value = int(value)
    if not 0 <= value <= hi:
        raise InvalidArgumentError(f"{name} = {value} is outside [0, {hi}]")
    return value


_KV_TYPES = {"f32": 0, "f16": 1}


def check_kv_type(value: Optional[str]) -> int:
    """A KV cache type name ("f32", "f16"; None → "f32") as hearth_kv_type."""
    if value is None:
        return 0
    if not isinstance(value, str):
        raise TypeError(f"kv_type must be a str or None, not {type(value).__name__}")
    try:
        return _KV_TYPES[value.lower()]
    except KeyError:
        raise InvalidArgumentError(
            f"kv_type {value!r} is not a KV cache type (f32 or f16)") from None


def token_array(ids: Any) -> np.ndarray:
    """`ids` as a contiguous 1-D int32 array (a copy when needed)."""
    if isinstance(ids, (str, bytes, bytearray)) or not isinstance(ids, (Iterable, np.ndarray)):
        raise TypeError(f"token ids must be a sequence of ints, not {type(ids).__name__}")
    if not isinstance(ids, np.ndarray):
        ids = list(ids)
        for i, x in enumerate(ids):
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
                raise TypeError(f"token ids must be ints; item {i} is {type(x).__name__}")
            if not _INT32_MIN <= int(x) <= _INT32_MAX:
                raise InvalidArgumentError(f"token id {int(x)} at position {i} is not a valid id")
        return np.array(ids, dtype=np.int32).reshape(-1)
    arr = ids
    if arr.ndim != 1:
        raise InvalidArgumentError(f"token ids must be 1-D, got an array of shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int32)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"token ids must be an integer array, not {arr.dtype}")
    bad = np.flatnonzero((arr < _INT32_MIN) | (arr > _INT32_MAX))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgumentError(f"token id {int(arr[i])} at position {i} is not a valid id")
    return np.ascontiguousarray(arr, dtype=np.int32)


def encode_text(name: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, not {type(text).__name__}")
    return text.encode("utf-8")


def sampling_params(sampling: Optional[SamplingParams],
                    overrides: Dict[str, Any]) -> SamplingParams:
    """`sampling` (or the defaults) with the non-None keyword overrides applied."""
    if sampling is not None and not isinstance(sampling, SamplingParams):
        raise TypeError(f"sampling must be a hearth.SamplingParams, not {type(sampling).__name__}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if sampling is None:
        return SamplingParams(**changes)
    return sampling.replace(**changes) if changes else sampling


def message_pairs(messages: Any) -> List[Tuple[bytes, bytes]]:
    """Checks a conversation (``{"role", "content"}`` dicts or ``(role,
    content)`` pairs) and encodes it for the extension."""
    if isinstance(messages, (str, bytes, bytearray, Mapping)) or not isinstance(
            messages, Iterable):
        raise TypeError("messages must be a sequence of messages")
    pairs = []
    for i, msg in enumerate(messages):
        if isinstance(msg, Mapping):
            if "role" not in msg or "content" not in msg:
                raise InvalidArgumentError(f"messages[{i}] needs 'role' and 'content'")
            role, content = msg["role"], msg["content"]
        elif isinstance(msg, tuple) and len(msg) == 2:
            role, content = msg
        else:
            raise TypeError(f"messages[{i}] must be a dict or a (role, content) pair, "
                            f"not {type(msg).__name__}")
        raw_role = encode_text(f"messages[{i}] role", role)
        raw_content = encode_text(f"messages[{i}] content", content)
        if b"\0" in raw_role or b"\0" in raw_content:
            raise InvalidArgumentError(f"messages[{i}] contains a NUL character")
        pairs.append((raw_role, raw_content))
    return pairs


class Request(NamedTuple):
    """A checked generate()/stream() call."""

    # Text, or a conversation of (role, content) pairs: the extension then
    # generates the assistant's reply (hearth_session_generate_chat).
    prompt: Union[bytes, List[Tuple[bytes, bytes]]]
    max_tokens: int  # -1: no limit
    sampling: SamplingParams
    stop: List[bytes]
    add_special: Optional[bool]  # None: hearth.h's rule (only into an empty session)
    parse_special: bool
    reuse_prefix: bool = False
    constraint: bytes = b""  # an extension plugin's name; b"" = none
    constraint_config: bytes = b""

    def c_args(self, session_is_empty: Callable[[], bool]) -> Tuple[Any, ...]:
        """The arguments of _hearth.Session.generate / .stream, in order."""
        if self.add_special is None and not self.parse_special:
            return (self.prompt, self.max_tokens, self.sampling, self.stop, 0, True,
                    self.reuse_prefix, self.constraint, self.constraint_config)
        # C's default rule cannot be combined with PARSE_SPECIAL, so it is
        # applied here.
        add = self.add_special if self.add_special is not None else session_is_empty()
        flags = _hearth.TOKENIZE_ADD_SPECIAL if add else 0
        if self.parse_special:
            flags |= _hearth.TOKENIZE_PARSE_SPECIAL
        return (self.prompt, self.max_tokens, self.sampling, self.stop, flags, False,
                self.reuse_prefix, self.constraint, self.constraint_config)


def make_request(
    prompt: Any,
    max_tokens: Optional[int],
    stop: Union[str, Sequence[str], None],
    sampling: Optional[SamplingParams],
    add_special: Optional[bool],
    parse_special: bool,
    overrides: Dict[str, Any],
    reuse_prefix: bool = False,
    ban: Union[str, Sequence[str], None] = None,
    constraint: Optional[Tuple[str, str]] = None,
) -> Request:
    """Checks the arguments of generate()/stream() and packs them. A prompt
    that is not a str is a conversation."""
    raw_prompt: Union[bytes, List[Tuple[bytes, bytes]]]
    if isinstance(prompt, str):
        raw_prompt = encode_text("prompt", prompt)
    elif isinstance(prompt, (list, tuple)):
        raw_prompt = message_pairs(prompt)
        if add_special is not None or parse_special:
            raise TypeError("add_special and parse_special apply to a text prompt, not to a "
                            "conversation (its ids come from the model's chat format)")
    else:
        raise TypeError(f"prompt must be a str or a conversation (a list of messages), "
                        f"not {type(prompt).__name__}")
    if max_tokens is None:
        n = -1  # until end of generation or a full context
    else:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
            raise TypeError(f"max_tokens must be an int or None, not {type(max_tokens).__name__}")
        n = int(max_tokens)
        if not 0 <= n <= _INT32_MAX:
            raise InvalidArgumentError(
                f"max_tokens = {n} is outside [0, {_INT32_MAX}] (use None for no limit)")
    stops = stop_strings(stop)
    if add_special is not None and not isinstance(add_special, bool):
        raise TypeError(f"add_special must be a bool or None, not {type(add_special).__name__}")
    params = sampling_params(sampling, overrides)
    plugin, config = constraint_args(ban, constraint)
    return Request(raw_prompt, n, params, stops, add_special, bool(parse_special),
                   bool(reuse_prefix), plugin, config)


def stop_strings(stop: Union[str, Sequence[str], None]) -> List[bytes]:
    """Checks a ``stop=`` argument (a str, a sequence of str, or None) and
    encodes it."""
    if stop is None:
        return []
    if isinstance(stop, str):
        stops = [stop.encode("utf-8")]
    else:
        if isinstance(stop, (bytes, bytearray)) or not isinstance(stop, Iterable):
            raise TypeError(f"stop must be a str or a sequence of str, not {type(stop).__name__}")
        stops = [encode_text("each stop string", s) for s in stop]
    for s in stops:
        if not s:
            raise InvalidArgumentError("a stop string is empty")
        if b"\0" in s:
            raise InvalidArgumentError(f"stop string {s!r} contains a NUL character")
    return stops


def constraint_args(ban: Union[str, Sequence[str], None],
                    constraint: Optional[Tuple[str, str]]) -> Tuple[bytes, bytes]:
    """(plugin name, config) for hearth_generate_params; ``ban`` is the
    banned-strings plugin with its strings, one per line."""
    if ban is not None and constraint is not None:
        raise TypeError("give ban or constraint, not both (ban uses the banned-strings plugin)")
    if ban is not None:
        strings = [ban] if isinstance(ban, str) else list(ban)
        lines = []
        for s in strings:
            if not isinstance(s, str):
                raise TypeError(f"ban takes str values, not {type(s).__name__}")
            if not s or "\n" in s or "\0" in s:
                raise InvalidArgumentError(
                    f"banned string {s!r} is empty or holds a newline or NUL character")
            lines.append(s)
        if not lines:
            raise InvalidArgumentError("ban is empty")
        return b"banned-strings", ("\n".join(lines) + "\n").encode("utf-8")
    if constraint is None:
        return b"", b""
    if (not isinstance(constraint, tuple) or len(constraint) != 2 or
            not all(isinstance(x, str) for x in constraint)):
        raise TypeError("constraint must be a (plugin name, config) pair of str")
    name, config = constraint
    if not name:
        raise InvalidArgumentError("constraint names no plugin")
    return encode_text("the constraint plugin name", name), encode_text("the constraint config",
                                                                       config)
