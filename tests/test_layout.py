"""The package's layout: one module per concern, imports pointing one way.

Read from the source files with ``ast`` (what a new engineer reads), so the test
holds for imports inside functions as well as at the top of a module."""
import ast
from pathlib import Path

import pytest

import pgfast

SOURCE = Path(__file__).resolve().parent.parent / "pgfast"
# Modules every layer may reach into, private names included: the argument checks
# and the compiled kernels (pgfast._x) that the wrappers own.
SHARED = {"_validation"}


def package_imports():
    """{module: {(imported module, name or None)}} for imports within pgfast, relative
    imports resolved at every level (``from ..x import y`` in pgfast/integrations)."""
    graph = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        module = ".".join(parts)
        package = list(parts[:-1])   # the package a relative import starts from
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                base = package[:len(package) - (node.level - 1)]
                if node.level - 1 > len(package):
                    raise AssertionError(f"{module}: import beyond the package")
                if node.module:
                    target = ".".join(base + node.module.split("."))
                    edges |= {(target, alias.name) for alias in node.names}
                else:   # from . import x
                    edges |= {(".".join(base + [alias.name]), None) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pgfast."):
                edges |= {(node.module[7:], alias.name) for alias in node.names}
        graph[module] = edges
    return graph


def test_the_source_tree_is_there():
    if not (SOURCE / "__init__.py").exists():
        pytest.skip(f"the package source is not beside the tests ({SOURCE})")
    assert {"problem", "baselines", "estimators", "optim", "updates", "training",
            "checkpoints", "cli", "rollout"} <= set(package_imports())


def test_import_graph_has_no_cycle():
    graph = {m: {target for target, _ in edges if target != "__init__"}
             for m, edges in package_imports().items() if m != "__init__"}
    state = {}

    def visit(module, trail):
        if state.get(module) == "open":
            raise AssertionError("import cycle: " + " -> ".join(trail + [module]))
        if state.get(module) == "done":
            return
        state[module] = "open"
        for target in graph.get(module, ()):
            if target in graph:
                visit(target, trail + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])


def test_no_module_imports_a_siblings_private_names():
    offenders = [
        f"{module} imports {name} from {target}"
        for module, edges in package_imports().items()
        for target, name in edges
        if name and name.startswith("_") and target not in SHARED
        and not target.startswith("_")   # the compiled kernels pgfast._x
    ]
    assert offenders == []


def test_the_package_docstring_lists_every_module():
    """pgfast/__init__.py's table: every module once, and nothing that is not one."""
    if not (SOURCE / "__init__.py").exists():
        pytest.skip(f"the package source is not beside the tests ({SOURCE})")
    listed = {line.split("``")[1] for line in pgfast.__doc__.splitlines()
              if line.startswith("``")}
    modules = {path.stem for path in SOURCE.glob("*.py")   # conftest.py: pytest's, for doctests
               if path.stem not in ("__init__", "__main__", "conftest")}
    modules |= {path.name for path in SOURCE.iterdir()
                if path.is_dir() and (path / "__init__.py").exists()}
    assert listed == modules, (sorted(modules - listed), sorted(listed - modules))


def test_every_module_says_what_it_owns():
    for path in SOURCE.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 40, f"{path.name}: no opening docstring"


@pytest.mark.parametrize("name, module", [
    ("Problem", "problem"), ("Trajectories", "trajectories"), ("utility", "problem"),
    ("ObservationNormalizer", "statistics"), ("RunState", "run"),
    ("ValueBaseline", "baselines"), ("GAEGradient", "estimators"),
    ("FiniteDifferenceGradient", "estimators"), ("Adam", "optim"),
    ("conjugate_gradient", "optim"), ("TrustRegionUpdate", "updates"),
    ("ClampedSurrogateUpdate", "updates"), ("train", "training"), ("evaluate", "training"),
    ("save_checkpoint", "checkpoints"), ("load_checkpoint", "checkpoints"),
    ("rollout", "rollout"), ("gae", "returns"),
])
def test_each_concern_has_one_home(name, module):
    assert getattr(pgfast, name).__module__ == f"pgfast.{module}"
