"""Output folders that never cost the user an input: checks before any work, atomic replacement after it.

Every command that writes a folder (select, publish, prune, train) goes through two steps:

1. :func:`check_output_dir`, before any work: the folder may not be ``.``/``""``, the current directory
   or one of its ancestors, a file, an input, inside an input or holding an input; a non-empty folder
   needs ``overwrite``.
2. :func:`staged_output`, around the writing: everything is written to a hidden staging sibling, then
   the old folder is renamed aside, the new one renamed in, and the old one removed last. An interrupt
   at any point leaves the old or the new folder complete; what a killed run leaves behind is put right
   (or reported) the next time the same folder is written.

Single files (a subnetwork mask, sparse weights, per-row scores, reports) are checked by :func:`check_output_file`
before any work and written by :func:`replace_file`: under a temporary name beside the target, then renamed over
it, never over an input or (without ``overwrite``) a file of another kind.

What this process has put on disk is kept in a short log, so an interrupted command can say what is there
(:func:`interrupt_message`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

STAGING, ASIDE = "staging", "old"
_written: list[tuple[Path, Path | None]] = []  # (output replaced or written, the previous copy set aside, if any)
_staging: set[Path] = set()  # staging folders being written: a file inside one is not an output until the folder is swapped in


def clear_written() -> None:
    """Forget what this process wrote (a command line run starts here)."""
    _written.clear()


def interrupt_message() -> str:
    """What is on disk after an interrupt, from what this process wrote: each output is old or new and complete."""
    if not _written:
        return "no output was changed"
    parts = []
    for target, old in _written:
        line = f"{target} was written"
        if old is not None and old.exists():
            line += f" (its previous copy {old.name} is removed the next time {target.name} is written)"
        parts.append(line)
    return "; ".join(parts) + "; nothing else was changed"


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _related(a: Path, b: Path) -> bool:
    """``a`` is ``b``, inside it, or holds it."""
    return a == b or a in b.parents or b in a.parents


def _refuse_inputs(target: Path, given: object, inputs: Iterable[str | os.PathLike | None], what: str, fix: str) -> None:
    for source in inputs:
        if source is None:
            continue
        src = _resolved(source)
        if _related(target, src) or _related(target.resolve(), src.resolve()):
            raise ValueError(f"{what} {given} would overwrite the input {source}; {fix}")


def check_output_dir(out: str | os.PathLike | None, inputs: Iterable[str | os.PathLike | None] = (), *,
                     overwrite: bool = False, flag: str = "--overwrite", what: str = "output folder") -> Path:
    """Return ``out`` as a resolved path, or raise before any work if writing it could lose data.

    ``inputs`` are the files and folders the command reads (a dataset file or folder, a model folder,
    its cache files); ``None`` entries are ignored.
    """
    if out is None or str(out).strip() in ("", ".", "./"):
        raise ValueError(f"{what} {str(out)!r} is the current directory; give a new folder name")
    target = _resolved(out)
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents or target.resolve() == cwd or target.resolve() in cwd.parents:
        raise ValueError(f"{what} {out} is the current directory or one of its parents; give a new folder name")
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{what} {out} is a file, not a folder")
    _refuse_inputs(target, out, inputs, what, "write to a separate folder")
    recover(target)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{what} {out} is not empty; pass {flag} to replace it")
    return target


def _siblings(target: Path, kind: str) -> list[Path]:
    """The folders this module made beside ``target``: exactly ``.NAME.old-HEX8`` or ``.NAME.staging-PID-HEX8``,
    so a user's own ``.NAME.old-backup`` is never touched."""
    if not target.parent.exists():
        return []
    shape = re.compile(re.escape(f".{target.name}.{kind}-") + (r"\d+-[0-9a-f]{8}" if kind == STAGING else r"[0-9a-f]{8}"))
    return sorted(p for p in target.parent.iterdir() if p.is_dir() and shape.fullmatch(p.name))


def _pid_alive(name: str) -> bool:
    """Staging names carry the writer's pid: ``.NAME.staging-PID-HEX``."""
    try:
        pid = int(name.rsplit("-", 2)[-2])
    except (ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(target: str | os.PathLike) -> list[str]:
    """Put right what an interrupted replacement of ``target`` left; return what was done, one line each.

    * the old folder set aside and no new one renamed in: the old one is renamed back;
    * the old folder set aside and the new one in place: the old one is removed;
    * a staging folder of a process that is no longer running: removed (it was never the output).
    """
    target = _resolved(target)
    done = []
    for old in _siblings(target, ASIDE):
        if not target.exists():
            os.rename(old, target)
            done.append(f"restored {target} from an interrupted replacement ({old.name})")
        else:
            shutil.rmtree(old)
            done.append(f"removed {old}, the previous {target.name} left by an interrupted replacement")
    for staging in _siblings(target, STAGING):
        if not _pid_alive(staging.name):
            shutil.rmtree(staging, ignore_errors=True)
            done.append(f"removed {staging}, an unfinished output of an interrupted run")
    for line in done:
        logger.warning(line)
    return done


def replace_dir(staging: Path, target: Path) -> None:
    """Move the complete folder ``staging`` to ``target``: old aside, new in, old removed last.

    If renaming the new folder in fails (or is interrupted by ``KeyboardInterrupt``), the old one is put back.
    """
    old = target.with_name(f".{target.name}.{ASIDE}-{uuid.uuid4().hex[:8]}") if target.exists() else None
    try:
        if old is not None:
            os.rename(target, old)
        os.rename(staging, target)
    except BaseException:
        if not staging.exists():  # interrupted just after the new folder went in: it stays
            _written.append((target, old))
        elif old is not None and old.exists() and not target.exists():
            os.rename(old, target)
        raise
    _written.append((target, old))
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_output(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; on success it replaces ``target`` atomically.

    On any error (``KeyboardInterrupt`` included) the staging folder is removed and ``target`` is untouched.
    """
    target = _resolved(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{STAGING}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    _staging.add(staging)
    try:
        yield staging
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # gone already once it was renamed in
        raise
    finally:
        _staging.discard(staging)


def check_output_file(path: str | os.PathLike | None, ours: Callable[[Path], bool], what: str,
                      inputs: Iterable[str | os.PathLike | None] = (), *, overwrite: bool = False,
                      flag: str = "overwrite=True") -> Path:
    """Return ``path`` resolved, or raise before any work if writing the file ``what`` there could lose data.

    Refused: an empty name, a folder, a path whose nearest existing folder cannot be written, an input (or a path
    inside an input folder), and an existing file that ``ours`` does not recognise as an earlier ``what`` unless
    ``overwrite``. Missing parent folders are created when the file is written.
    """
    if path is None or not str(path).strip():
        raise ValueError(f"{what}: give a file name, got {str(path)!r}")
    target = _resolved(path)
    if target.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder; give a file name")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise PermissionError(f"{what} {path}: cannot create files in {parent}")
    _refuse_inputs(target, path, inputs, what, "write to another file")
    if target.exists() and not overwrite and not ours(target):
        raise FileExistsError(f"{what} {path} exists and is not an earlier {what}; pass {flag} to replace it")
    return target


def replace_file(path: str | os.PathLike, write: Callable[[Path], None], ours: Callable[[Path], bool], what: str, *,
                 overwrite: bool = False) -> Path:
    """Write one file atomically: ``write(temp)`` next to ``path``, then renamed over it.

    An existing ``path`` is replaced only if ``ours(path)`` says this kind of file wrote it (``what`` names the
    kind in the refusal) or ``overwrite``; a folder is refused. An error or an interrupt while writing leaves
    ``path`` as it was and no temporary file behind.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; give a file name for the {what}")
    if path.exists() and not overwrite and not ours(path):
        raise FileExistsError(f"{str(path)!r} exists and is not a {what}; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    written = _resolved(path)
    if not any(folder in written.parents for folder in _staging):
        _written.append((written, None))
    return path


def _is_figure(path: Path) -> bool:
    """Matplotlib names itself in the files it writes (PNG text chunk, PDF/SVG metadata)."""
    with open(path, "rb") as handle:
        return b"matplotlib" in handle.read(4096).lower()


def save_figure(fig, path: str | os.PathLike, *, overwrite: bool = False, **kwargs) -> Path:
    """``fig.savefig(path)``, atomically; an existing file is replaced only if matplotlib wrote it (or ``overwrite``)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return replace_file(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs), _is_figure, "figure", overwrite=overwrite)


def _json_keys(path: Path) -> set | None:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return set(data) if isinstance(data, dict) else None


def write_json(path: str | os.PathLike, record: dict, what: str, *, overwrite: bool = False, indent: int = 1, **dumps) -> Path:
    """``record`` as JSON, atomically; an existing file is replaced only if it is the same kind of record (the same
    top-level keys) or ``overwrite``."""
    import json

    text = json.dumps(record, indent=indent, **dumps) + "\n"
    return replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), lambda p: _json_keys(p) == set(record), what,
                        overwrite=overwrite)
