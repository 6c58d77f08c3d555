"""The layering: no import cycles, applications meet only in the core or through public APIs, a light ``import hf_qselect``."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "hf_qselect"
APPLICATIONS = {"selection", "pruning", "training", "hub", "comparison", "classifier", "heads", "compression", "subnetworks", "diagnostics"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every ``hf_qselect`` module that ``path`` imports, at the top or inside a function, resolved to full names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hf_qselect")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("hf_qselect"):
                continue
            for alias in node.names:  # "from . import baselines" imports a module, not a name
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                          or (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").exists() else target)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def test_the_import_graph_has_no_cycle():
    edges = graph()
    # a module importing its own package's __init__ for a re-export is the only back edge allowed; there are none
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle.extend(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
                return True
            if nxt not in state and visit(nxt, path + [nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(edges):
        if start not in state:
            assert not visit(start, [start]), f"import cycle: {' -> '.join(cycle)}"


def application(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in APPLICATIONS else None


def test_applications_meet_only_through_public_apis():
    """A module of one application may import another application's package (its __init__), never its modules;
    the core (hf_qselect.qubo) knows no application at all."""
    bad = []
    for module, targets in graph().items():
        mine = application(module)
        for target in targets:
            theirs = application(target)
            if module.startswith("hf_qselect.qubo") and (theirs or target.split(".")[1] in ("data", "cli", "validation")):
                bad.append(f"{module} -> {target} (the core imports an application)")
            if mine and theirs and mine != theirs and target != f"hf_qselect.{theirs}":
                bad.append(f"{module} -> {target}")
    assert not bad, "\n".join(bad)


def test_import_hf_qselect_is_light():
    code = "import hf_qselect, sys; assert 'transformers' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import hf_qselect.cli, sys; assert 'transformers' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_model_layer_knows_no_application_and_the_core_knows_no_model():
    bad = [f"{module} -> {target}" for module, targets in graph().items() for target in targets
           if (module.startswith("hf_qselect.models") and application(target))
           or (module.startswith("hf_qselect.qubo") and target.startswith("hf_qselect.models"))]
    assert not bad, "\n".join(bad)


LAZY = ["hf_qselect", "hf_qselect.models", "hf_qselect.pruning", "hf_qselect.compression", "hf_qselect.subnetworks",
        "hf_qselect.diagnostics"]


def test_every_lazy_package_lists_its_exports_and_resolves_them():
    code = ("import importlib, sys\n"
            f"for name in {LAZY!r}:\n"
            "    module = importlib.import_module(name)\n"
            "    missing = set(module.__all__) - set(dir(module))\n"
            "    assert not missing, (name, missing)\n"
            "assert 'torch' not in sys.modules\n"
            f"for name in {LAZY!r}:\n"
            "    module = importlib.import_module(name)\n"
            "    for export in module.__all__:\n"
            "        getattr(module, export)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_applications_use_the_core_and_the_model_layer_through_their_packages_and_validation_stays_below_the_core():
    """``hf_qselect.qubo`` and ``hf_qselect.models`` are used through their ``__init__`` by everything above them
    (no ``from ..qubo.decompose import``); ``validation.py`` (shared checks) imports neither."""
    import re

    deep = re.compile(r"^\s*from\s+(\.+|hf_qselect\.)(qubo|models)\.\w+\s+import", re.M)
    bad = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
           if p.relative_to(PACKAGE).parts[0] not in ("qubo", "models") and deep.search(p.read_text())]
    assert not bad, bad
    validation = (PACKAGE / "validation.py").read_text()
    assert not re.search(r"^\s*from\s+\.(qubo|models)\b", validation, re.M)


def test_benchmarks_import_the_timing_and_summary_helpers_instead_of_writing_them_again():
    benchmarks = Path(__file__).parents[1] / "benchmarks"
    texts = {p.name: p.read_text() for p in benchmarks.glob("*.py")}
    assert not [name for name, text in texts.items() if "def mean_std(values: list[float], scale" in text or "statistics.stdev" in text]
    assert not [name for name, text in texts.items() if "def reduction_without_loss" in text]
    assert "interleaved_seconds" in texts["pruning.py"] and "adapter.pooled" in texts["subnetworks.py"]
