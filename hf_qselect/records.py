"""``JsonRecord``: ``to_dict`` / ``to_json`` for the report dataclasses (selection, pruning, compression)."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any


class JsonRecord:
    """Mixin for a dataclass report: ``to_dict()`` (override to add derived values) and ``to_json(path)``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | None = None, indent: int = 2, *, overwrite: bool = False) -> str:
        """The report as JSON text, also written to ``path`` when given (atomically; an existing file only if it is
        an earlier report of this kind, or with ``overwrite``)."""
        record = self.to_dict()
        if path is not None:
            from .output_dir import write_json

            write_json(path, record, type(self).__name__, overwrite=overwrite, indent=indent, default=str)
        return json.dumps(record, indent=indent, default=str)
