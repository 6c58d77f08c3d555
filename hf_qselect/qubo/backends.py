"""Where the block chunks run: this machine's processes (joblib's loky), or a Dask or Ray cluster.

``backend_context("dask" | "ray", workers)`` connects to the cluster named by the environment
(``DASK_SCHEDULER_ADDRESS``, ``RAY_ADDRESS``) or starts a local one with ``workers`` worker processes, and makes
it joblib's backend for the duration; a cluster it started is shut down at the end. Answers do not depend on
the backend: every chunk carries its own seed.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

BACKENDS = ("loky", "dask", "ray")
_ON_CLUSTER: ContextVar[bool] = ContextVar("hf_qselect_on_cluster", default=False)


def on_cluster() -> bool:
    """Inside ``backend_context("dask" | "ray")``: the user asked for the cluster, so even small work goes there."""
    return _ON_CLUSTER.get()


MODULES = {"dask": "dask.distributed", "ray": "ray.util.joblib"}


def check_backend(backend: str) -> str:
    """A known backend whose package is installed (the error names the extra to install)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got backend={backend!r}")
    if backend in MODULES:
        from importlib.util import find_spec

        try:
            found = find_spec(MODULES[backend]) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise _missing(backend)
    return backend


def _missing(backend: str) -> ImportError:
    return ImportError(f"backend={backend!r} needs the optional extra: pip install 'hf-qselect[{backend}]'")


GUARD_HINT = ("a script that starts a local cluster must run its work under `if __name__ == \"__main__\":` (the worker "
              "processes import the script again), or connect to a running cluster (DASK_SCHEDULER_ADDRESS)")


def _is_main_test(test: object) -> bool:
    import ast

    return (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and {ast.unparse(test.left), ast.unparse(test.comparators[0])} == {"__name__", "'__main__'"})


def unguarded_main_line() -> int | None:
    """The line of the ``__main__`` script that leads here from its top level outside ``if __name__ == "__main__":``
    (worker processes started with *spawn* would run it again), or ``None``."""
    import ast
    import inspect
    import sys

    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or not str(path).endswith(".py") or not os.path.isfile(path):
        return None
    frame = inspect.currentframe()
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__"):
        frame = frame.f_back
    if frame is None or os.path.abspath(frame.f_code.co_filename) != os.path.abspath(path):
        return None
    line = frame.f_lineno
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    guarded = any(isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= (node.end_lineno or line)
                  for node in ast.walk(tree))
    return None if guarded else line


def check_main_guard(backend: str) -> None:
    """Refuse, before any process starts, a local cluster called from a script's unguarded top level."""
    import sys

    line = unguarded_main_line()
    if line is not None:
        script = os.path.basename(sys.modules["__main__"].__file__)
        raise RuntimeError(f"backend={backend!r}: {script} line {line} runs at the script's top level; {GUARD_HINT}")


def _workers(n_jobs: int | None) -> int:
    return max(1, (os.cpu_count() or 1) if n_jobs is None or n_jobs < 0 else int(n_jobs))


@contextmanager
def backend_context(backend: str, n_jobs: int | None = -1) -> Iterator[None]:
    """Run joblib work inside on ``backend``; ``loky`` changes nothing."""
    check_backend(backend)
    if backend == "loky":
        yield
        return
    token = _ON_CLUSTER.set(True)
    try:
        with _cluster(backend, n_jobs):
            yield
    finally:
        _ON_CLUSTER.reset(token)


@contextmanager
def _cluster(backend: str, n_jobs: int | None) -> Iterator[None]:
    """joblib's backend set to a Dask or Ray cluster (connected to, or started and shut down here)."""
    from joblib import parallel_config

    if backend == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise _missing("dask") from None
        address = os.environ.get("DASK_SCHEDULER_ADDRESS")
        cluster = None
        if not address:
            check_main_guard("dask")
            try:
                cluster = LocalCluster(n_workers=_workers(n_jobs), threads_per_worker=1, dashboard_address=None)
            except Exception as err:
                raise RuntimeError(f"backend='dask' could not start a local cluster ({' '.join(str(err).split())[:200]}); {GUARD_HINT}") from err
        client = Client(address or cluster)
        try:
            with parallel_config(backend="dask"):
                yield
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise _missing("ray") from None
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, **({} if address else {"num_cpus": _workers(n_jobs)}), include_dashboard=False, log_to_driver=False)
    register_ray()
    try:
        with parallel_config(backend="ray"):
            yield
    finally:
        if started:
            ray.shutdown()
