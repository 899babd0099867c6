"""The shape of the house: the data contract is a light leaf, hsr_keras uses nothing else of the builder, no import loops."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hsr_keras", "tfrecords_builder")


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports():
    """{module: {modules of the two packages it imports, anywhere in its code}}."""
    graph = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = module_name(path)
            found = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                    found |= {f"{node.module}.{alias.name}" for alias in node.names}
            graph[name] = {m for m in found if m.split(".")[0] in PACKAGES}
    modules = set(graph)
    return {name: {m for m in found if m in modules and m != name} for name, found in graph.items()}


def test_hsr_keras_imports_only_the_contract_of_the_builder():
    offending = {
        name: sorted(
            m for m in found if m.startswith("tfrecords_builder") and not m.startswith("tfrecords_builder.contract")
        )
        for name, found in imports().items()
        if name.startswith("hsr_keras")
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_contract_imports_nothing_else_of_the_builder():
    offending = {
        name: sorted(m for m in found if not m.startswith("tfrecords_builder.contract"))
        for name, found in imports().items()
        if name.startswith("tfrecords_builder.contract")
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_no_modules_import_each_other_directly_or_in_a_loop():
    graph = imports()
    # A package's __init__ only lends names (lazily) or lists moves: an import of `a.b` runs `a/__init__.py`
    # first, which is not an edge of the code's design.
    graph = {
        name: {m for m in found if not (ROOT / m.replace(".", "/") / "__init__.py").exists()}
        for name, found in graph.items()
    }
    state, loops = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                loops.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert loops == []


def test_importing_the_contract_loads_no_reader_beam_netcdf_or_tensorflow():
    contract = [module_name(p) for p in (ROOT / "tfrecords_builder" / "contract").glob("*.py")]
    probe = (
        f"import importlib, sys\nfor m in {contract!r}: importlib.import_module(m)\n"
        "heavy = {'xarray', 'netCDF4', 'apache_beam', 'tensorflow', 'keras', 'jax'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or "
        "(m.startswith('tfrecords_builder.') and not m.startswith('tfrecords_builder.contract'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_at_most_a_dozen_modules_directly_in_hsr_keras():
    top = sorted(p.name for p in (ROOT / "hsr_keras").glob("*.py"))
    assert len(top) <= 12, top
    assert {"fit.py", "tune.py", "evaluate.py", "compare.py", "export.py", "predict.py"} <= set(top)
