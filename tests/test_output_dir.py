"""Output folders: never an input, never the current directory, replaced atomically even when killed."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hf_qselect.output_dir import check_output_dir, recover, staged_output


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` and its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def make(path: Path, tag: str) -> dict[str, bytes]:
    (path / "data").mkdir(parents=True)
    for i in range(3):
        (path / "data" / f"part-{i}.bin").write_bytes(f"{tag} {i}".encode() * 1000)
    (path / "report.json").write_text(f'{{"version": "{tag}"}}')
    return tree(path)


@pytest.mark.parametrize("out", ["", ".", "./"])
def test_current_directory_is_refused(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("text,label\na,0\n")
    with pytest.raises(ValueError, match="current directory"):
        check_output_dir(out, overwrite=True)
    with pytest.raises(ValueError, match="current directory or one of its parents"):
        check_output_dir(tmp_path.parent, overwrite=True)
    assert (tmp_path / "data.csv").read_text() == "text,label\na,0\n"


def test_inputs_are_never_an_output(tmp_path):
    data = tmp_path / "in" / "data.csv"
    data.parent.mkdir()
    data.write_text("x")
    for out in (data.parent, tmp_path, data, data.parent / "sub"):  # holds it, holds it, is it, inside its folder
        with pytest.raises((ValueError, FileExistsError)):
            check_output_dir(out, [data.parent / "sub"] if out == data.parent / "sub" else [data], overwrite=True)
    assert check_output_dir(tmp_path / "out", [data]) == tmp_path / "out"


def test_a_file_and_a_busy_folder_are_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        check_output_dir(tmp_path / "f", overwrite=True)
    busy = tmp_path / "busy"
    make(busy, "old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_output_dir(busy)
    assert check_output_dir(busy, overwrite=True) == busy


def test_staged_output_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "out"
    make(target, "old")
    with staged_output(target) as staging:
        new = make(staging, "new")
    assert tree(target) == new and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError):
        with staged_output(target) as staging:
            (staging / "half").write_text("x")
            raise RuntimeError("the work failed")
    assert tree(target) == new and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


KILLER = textwrap.dedent("""
    import os, shutil, signal, sys
    from pathlib import Path
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as at a terminal, even if the runner's shell ignores SIGINT
    target, sig, step = Path(sys.argv[1]), getattr(signal, sys.argv[2]), int(sys.argv[3])
    calls = []
    real_rename, real_rmtree = os.rename, shutil.rmtree

    def ours(path):
        return Path(path).name == target.name or Path(path).name.startswith("." + target.name + ".")

    after = os.environ.get("KILL_WHEN") == "after"  # the signal right after the call returns, not just before it

    def hit(path):
        if ours(path):
            calls.append(path)
            if len(calls) == step:
                os.kill(os.getpid(), sig)

    def rename(a, b, *args, **kw):
        if after:
            done = real_rename(a, b, *args, **kw)
            hit(b)
            return done
        hit(b)
        return real_rename(a, b, *args, **kw)

    def rmtree(path, *args, **kw):
        if after:
            done = real_rmtree(path, *args, **kw)
            hit(path)
            return done
        hit(path)
        return real_rmtree(path, *args, **kw)

    os.rename, shutil.rmtree = rename, rmtree
    {body}
""")


def run_killed(body: str, target: Path, sig: str, step: int, *argv: str, when: str = "before", stderr: list | None = None) -> int:
    """Run ``body`` in a fresh Python that sends itself ``sig`` at the ``step``-th rename/removal touching ``target``
    (just ``before`` it, or just ``after`` it returns).

    Returns the exit status after checking the process really died of that signal; its stderr goes into ``stderr``.
    """
    script = KILLER.format(body=textwrap.dedent(body).strip())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "KILL_WHEN": when}
    done = subprocess.run([sys.executable, "-c", script, str(target), sig, str(step), *argv], env=env, capture_output=True,
                          text=True, timeout=300)
    if stderr is not None:
        stderr.append(done.stderr)
    if sig == "SIGKILL":
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    else:
        interrupted = "KeyboardInterrupt" in done.stderr or ": interrupted; " in done.stderr  # CLI: rc 130
        assert done.returncode != 0 and interrupted, done.stderr[-2000:]
    return done.returncode


STAGED = """
from hf_qselect.output_dir import staged_output
with staged_output(target) as staging:
    (staging / "data").mkdir()
    for i in range(3):
        (staging / "data" / f"part-{i}.bin").write_bytes(f"new {i}".encode() * 1000)
    (staging / "report.json").write_text('{"version": "new"}')
"""


STEPS = pytest.mark.parametrize("step", [1, 2, 3], ids=["old-aside", "new-in", "old-removed"])


def old_and_new(tmp_path: Path) -> tuple[Path, dict, dict]:
    """``(target, its old tree, the tree a replacement writes)``: an "old" folder in place, the "new" one for comparison."""
    target = tmp_path / "out"
    return target, make(target, "old"), make(tmp_path / "expected", "new")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
@STEPS
def test_killed_at_each_step_of_the_replace_leaves_one_complete_folder(tmp_path, sig, step):
    target, old, new = old_and_new(tmp_path)
    rc = run_killed(STAGED, target, sig, step)
    assert rc != 0  # it really was interrupted
    recover(target)  # what the next run does first
    assert tree(target) in (old, new)
    if sig == "SIGINT" and step < 3:
        assert tree(target) == old  # an interrupt before the new folder is in rolls back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected", "out"]  # nothing left beside it


def test_leftover_is_restored_by_the_next_check(tmp_path):
    target = tmp_path / "out"
    old = make(target, "old")
    assert run_killed(STAGED, target, "SIGKILL", 2) != 0  # old set aside, new never renamed in
    assert not target.exists() and any(p.name.startswith(".out.old-") for p in tmp_path.iterdir())
    check_output_dir(target, overwrite=True)
    assert tree(target) == old


def test_interrupt_while_writing_leaves_the_old_folder(tmp_path):
    target = tmp_path / "out"
    old = make(target, "old")
    body = STAGED.replace("(staging / \"report.json\")", "os.kill(os.getpid(), sig); (staging / \"report.json\")")
    for sig in ("SIGINT", "SIGKILL"):
        assert run_killed(body, target, sig, 99) != 0
        recover(target)
        assert tree(target) == old and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_recover_never_touches_a_users_lookalike_folders(tmp_path):
    target = tmp_path / "out"
    make(target, "mine")
    for name in (".out.old-backup", ".out.staging-notes", ".out.old-0123456789"):
        make(tmp_path / name, name)
    before = tree(tmp_path)
    assert recover(target) == [] and check_output_dir(target, overwrite=True) == target
    assert tree(tmp_path) == before


def test_replace_file_is_atomic_and_replaces_only_its_own_kind(tmp_path):
    from hf_qselect.output_dir import replace_file

    target = tmp_path / "mask.json"
    ours = lambda p: p.read_text().startswith("ours")  # noqa: E731
    replace_file(target, lambda t: t.write_text("ours 1"), ours, "mask")
    assert target.read_text() == "ours 1"

    def interrupted(tmp):
        tmp.write_text("ours, half written")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_file(target, interrupted, ours, "mask")
    assert target.read_text() == "ours 1" and [p.name for p in tmp_path.iterdir()] == ["mask.json"]  # old copy, no temp left
    replace_file(target, lambda t: t.write_text("ours 2"), ours, "mask")
    assert target.read_text() == "ours 2"
    foreign = tmp_path / "notes.txt"
    foreign.write_text("mine")
    with pytest.raises(FileExistsError, match="exists and is not a mask"):
        replace_file(foreign, lambda t: t.write_text("ours"), ours, "mask")
    assert foreign.read_text() == "mine"
    with pytest.raises(IsADirectoryError, match="is a folder"):
        replace_file(tmp_path, lambda t: t.write_text("ours"), ours, "mask")


TOLD = """
from hf_qselect.output_dir import interrupt_message, staged_output
try:
    with staged_output(target) as staging:
        (staging / "data").mkdir()
        for i in range(3):
            (staging / "data" / f"part-{i}.bin").write_bytes(f"new {i}".encode() * 1000)
        (staging / "report.json").write_text('{"version": "new"}')
except KeyboardInterrupt:
    print("TOLD: " + interrupt_message(), file=sys.stderr)  # what the CLI prints after "interrupted; "
    raise
"""


@pytest.mark.parametrize("when", ["before", "after"])
@STEPS
def test_the_interrupt_message_says_what_is_on_disk(tmp_path, step, when):
    """Issue 29 case 15: after Ctrl-C at any rename or removal, the message matches the folders on disk."""
    target, old, new = old_and_new(tmp_path)
    errors: list = []
    run_killed(TOLD, target, "SIGINT", step, when=when, stderr=errors)
    told = next(line for line in errors[0].splitlines() if line.startswith("TOLD: "))
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out."))
    assert target.exists()  # never absent at exit
    if "no output was changed" in told:
        assert tree(target) == old and not left
    else:
        assert f"{target} was written" in told and tree(target) == new
        assert left == ([told.split("previous copy ")[1].split()[0]] if "previous copy" in told else [])
    assert ("no output was changed" in told) == (step == 1 or (step == 2 and when == "before"))


STAGED_FILES = """
from hf_qselect.output_dir import interrupt_message, replace_file, staged_output
try:
    with staged_output(target) as staging:
        replace_file(staging / "report.json", lambda tmp: tmp.write_text("{}"), lambda p: True, "report")
        (staging / "data").mkdir()
except KeyboardInterrupt:
    print("TOLD: " + interrupt_message(), file=sys.stderr)
    raise
"""


def test_files_written_inside_a_staging_folder_are_not_reported_as_outputs(tmp_path):
    """A report written into the staging folder is part of the folder: interrupted before the swap, nothing changed."""
    target, old, _ = old_and_new(tmp_path)
    errors: list = []
    run_killed(STAGED_FILES, target, "SIGINT", 1, stderr=errors)  # just before the old folder is set aside
    told = next(line for line in errors[0].splitlines() if line.startswith("TOLD: "))
    assert told == "TOLD: no output was changed" and tree(target) == old
