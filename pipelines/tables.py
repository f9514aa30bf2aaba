"""One immutable, keyed table for every registry: models, metrics, datasets, degradations.

A table refuses duplicate keys and answers an unknown key with "did you mean …".
Each registry names its rows (``kind``), its key field and the error it raises.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar, Generic, TypeVar

Row = TypeVar("Row")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean a, b?`` for the close matches of ``name``, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(close)}?" if close else ""


class NamedTable(Generic[Row]):
    """Rows keyed by ``key(row)``; lookups are case-insensitive when ``fold_case`` is set."""

    kind: ClassVar[str] = "row"
    key_label: ClassVar[str] = "name"
    error: ClassVar[type[Exception]] = KeyError
    fold_case: ClassVar[bool] = False

    def __init__(self, rows: Iterable[Row], key: Callable[[Row], str]) -> None:
        self._rows: dict[str, Row] = {}
        for row in rows:
            name = self._fold(key(row))
            if name in self._rows:
                raise ValueError(f"duplicate {self.kind} {self.key_label} {key(row)!r}")
            self._rows[name] = row

    def _fold(self, name: str) -> str:
        return name.lower() if self.fold_case else name

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._fold(name) in self._rows

    def names(self) -> list[str]:
        return list(self._rows)

    def get(self, name: str) -> Row:
        try:
            return self._rows[self._fold(name)]
        except KeyError:
            hint = did_you_mean(self._fold(str(name)), self._rows)
            raise self.error(self.unknown_message(name, hint)) from None

    def unknown_message(self, name: str, hint: str) -> str:
        return f"Unknown {self.kind} {name!r}.{hint} Known: {', '.join(self._rows)}."
