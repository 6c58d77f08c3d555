"""``JsonRecord``: ``to_dict`` / ``to_json`` for the report dataclasses (selection, pruning, compression)."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any


class JsonRecord:
    """Mixin for a dataclass report: ``to_dict()`` (override to add derived values) and ``to_json(path)``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | None = None, indent: int = 2) -> str:
        """The report as JSON text, also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, default=str)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        return text
