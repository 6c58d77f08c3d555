"""What may be recorded about a run in a card or an upload: names and fingerprints, never a home directory."""
from __future__ import annotations

import os
from typing import Any


def public_path(value: Any) -> Any:
    """A local path as its last component (no home directory goes into a card or upload); other values as given."""
    if not isinstance(value, (str, os.PathLike)) or str(value).startswith("builtin:"):
        return value
    text = os.fspath(value)
    if os.path.isabs(os.path.expanduser(text)) or os.path.exists(text) or text.startswith((".", "~")):
        return os.path.basename(os.path.normpath(os.path.expanduser(text))) or text
    return value


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters fit to publish: local paths reduced to their names (``cache_dir``, an embedder folder)."""
    return {k: public_path(v) for k, v in params.items()}
