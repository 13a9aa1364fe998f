"""The sampling chain on its own, for hand-written decode loops."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from hearth import _hearth
from hearth._request import sampling_params
from hearth._types import SamplingParams


class Sampler:
    """Picks tokens from logits with a :class:`SamplingParams` chain and its
    own history (for the repetition penalties) (``hearth_sampler``).

    ``hearth.Sampler(temperature=0.7, seed=1)`` or
    ``hearth.Sampler(hearth.SamplingParams(...))``. Use it with
    :meth:`Session.feed` / :meth:`Session.logits`::

        s.feed(model.tokenize(prompt))
        sampler = hearth.Sampler(temperature=0.7, seed=1)
        for _ in range(32):
            t = sampler.sample(s.logits())
            if model.is_eog(t):
                break
            sampler.accept(t)
            s.feed([t])

    A sampler belongs to one thread at a time.
    """

    def __init__(self, params: Optional[SamplingParams] = None, **overrides: Any) -> None:
        unknown = set(overrides) - set(SamplingParams.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown sampling parameter(s): {', '.join(sorted(unknown))}")
        self.params = sampling_params(params, overrides)
        self._s = _hearth.Sampler(self.params)

    def sample(self, logits: np.ndarray) -> int:
        """A token id drawn from `logits` (n_vocab floats), considering the
        accepted history. Does not accept it."""
        arr = np.ascontiguousarray(logits, dtype=np.float32)
        return self._s.sample(arr)

    def accept(self, token: int) -> None:
        """Records `token` in the history (prompt or generated)."""
        self._s.accept(int(token))

    def reset(self) -> None:
        """Forgets the history and reseeds."""
        self._s.reset()
