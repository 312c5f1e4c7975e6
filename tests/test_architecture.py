"""The layers of the house (docs/dev/ARCHITECTURE.md), read from the source.

Every import in the package is parsed, at module level and inside functions
(a lazy import is still a dependency), and the tests fail on an import cycle,
on an import that points up the layers (the core into a workflow package, or
a workflow package into one above it), on a submodule importing the package
root, on ``importlib``-style workarounds, and on a private name used outside
its module. The analysis is checked on a small synthetic package first, so
each test can fail.
"""

import ast
from pathlib import Path

import pytest

import nnumpy

PACKAGE = "nnumpy"
SOURCE = Path(nnumpy.__file__).parent

# Layer of each workflow package or module (the first name after ``nnumpy.``);
# anything not listed is core (layer 0). A module may import modules of a lower
# layer and of its own package, nothing else. Keep in step with ARCHITECTURE.md.
WORKFLOW_LAYERS = {
    "io": 1,
    "models": 1,
    "plots": 1,
    "data": 2,
    "training": 3,
    "export": 3,
    "distributed": 4,
    "onnx": 4,
    "interop": 4,
    "cli": 5,
    "__main__": 6,
}


# ------------------------------------------------------------------ the analysis
def find_modules(root, package):
    """``{dotted name: path}`` of every ``.py`` file under ``root`` (the package directory)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(module, is_package, level, name):
    """The absolute module a relative ``from`` import names."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _known(name, modules):
    """The longest prefix of ``name`` that is a module of the package, or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


class Import:
    """One import statement of ``module``: the package modules it depends on
    (``targets``), the names it takes from them, and whether it reads the
    package root's namespace (``import nnumpy``, ``from nnumpy import __version__``)."""

    def __init__(self, module, line, targets, names, reads_root):
        self.module, self.line, self.targets, self.names, self.reads_root = module, line, targets, names, reads_root

    def __repr__(self):
        return f"{self.module}:{self.line}"


def parse_imports(modules, package):
    """Every import of every module (module level and inside functions), as ``Import``s."""
    found = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _known(alias.name, modules)
                    if target is not None:
                        reads_root = target == package and alias.name == package
                        found.append(Import(module, node.lineno, {target} - {package}, [], reads_root))
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module) if node.level else (node.module or "")
                origin = _known(base, modules)
                if origin is None:
                    continue  # numpy, the standard library, ...
                targets, names = set(), []
                for alias in node.names:
                    sub = _known(f"{base}.{alias.name}", modules)
                    if sub is not None and sub != origin:
                        targets.add(sub)  # ``from . import containers``: a submodule
                    else:
                        targets.add(origin)
                        names.append(alias.name)  # a name defined in ``origin``
                reads_root = origin == package and bool(names)
                found.append(Import(module, node.lineno, targets - {package, module}, names, reads_root))
    return found


def dependency_graph(imports, package):
    """``{module: modules it needs}``. Importing ``a.b.c`` runs ``a/__init__`` and
    ``a/b/__init__`` first, so those count too, except the importer's own packages
    (already being imported when it runs) and the root."""
    graph = {}
    for imp in imports:
        own = {imp.module.rsplit(".", k)[0] for k in range(imp.module.count(".") + 1)}
        needed = graph.setdefault(imp.module, set())
        for target in imp.targets:
            parts = target.split(".")
            needed.update(".".join(parts[:k]) for k in range(2, len(parts) + 1))
        needed -= own | {package}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def top_name(module):
    """The package or module right under the root: ``nnumpy.io.atomic`` -> ``io``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(module, layers):
    return layers.get(top_name(module), 0)


def upward_imports(imports, package, layers):
    """``(importer, imported)`` pairs that point up the layers or sideways into another package."""
    bad = []
    for imp in imports:
        if imp.module == package:
            continue  # the package root gathers the public API from every layer
        for target in sorted(imp.targets):
            mine, theirs = layer(imp.module, layers), layer(target, layers)
            sideways = mine == theirs and mine > 0 and top_name(imp.module) != top_name(target)
            if theirs > mine or sideways:
                bad.append((f"{imp!r}", target))
    return sorted(bad)


def root_reads(imports, package):
    return sorted(repr(imp) for imp in imports if imp.module != package and imp.reads_root)


def _private_definitions(tree):
    """The private names a module defines: functions, classes, methods, and
    names or attributes it assigns (``_x = ...``, ``self._x = ...``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {name for name in names if _is_private(name)}


def private_names(imports, modules):
    """A private name used outside the module that defines it: ``from .x import _name``,
    ``x._name`` on an imported package module, and ``obj._name`` (``obj`` not ``self``
    or ``cls``) where ``_name`` is defined in another module of the package only."""
    bad = [f"{imp!r} imports {name}" for imp in imports for name in imp.names if _is_private(name)]
    trees = {module: ast.parse(path.read_text(), str(path)) for module, path in modules.items()}
    defined = {module: _private_definitions(tree) for module, tree in trees.items()}
    everywhere = set().union(*defined.values())
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = trees[module]
        aliases = {}  # local name -> package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module) if node.level else (node.module or "")
                for alias in node.names:
                    sub = _known(f"{base}.{alias.name}", modules)
                    if sub == f"{base}.{alias.name}":
                        aliases[alias.asname or alias.name] = sub
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and _known(alias.name, modules) == alias.name:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _is_private(node.attr)
            ):
                bad.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
            elif (
                isinstance(node, ast.Attribute)
                and _is_private(node.attr)
                and node.attr in everywhere - defined[module]
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                bad.append(f"{module}:{node.lineno} uses {ast.unparse(node)} (defined in another module)")
    return sorted(bad)


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def workarounds(modules):
    """``importlib`` (other than ``importlib.metadata``), ``__import__``, a
    module-level ``__getattr__``, a class defined inside a function."""
    bad = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                bad += [f"{module}:{node.lineno} imports {a.name}" for a in node.names if _is_importlib(a.name)]
            elif isinstance(node, ast.ImportFrom) and not node.level and _is_importlib(node.module or ""):
                if not (node.module == "importlib" and all(a.name == "metadata" for a in node.names)):
                    bad.append(f"{module}:{node.lineno} imports from {node.module}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
                bad.append(f"{module}:{node.lineno} calls __import__")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bad += [
                    f"{module}:{inner.lineno} defines class {inner.name} inside {node.name}()"
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.ClassDef)
                ]
        bad += [
            f"{module}:{node.lineno} defines a module-level __getattr__"
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        ]
    return sorted(bad)


def _is_importlib(name):
    return (name == "importlib" or name.startswith("importlib.")) and not name.startswith("importlib.metadata")


def analyse(root, package, layers):
    modules = find_modules(root, package)
    imports = parse_imports(modules, package)
    return {
        "cycles": cycles(dependency_graph(imports, package)),
        "upward": upward_imports(imports, package, layers),
        "root": root_reads(imports, package),
        "private": private_names(imports, modules),
        "workarounds": workarounds(modules),
    }


# ------------------------------------------------------------------ the analysis finds what it should
SYNTHETIC = {
    "__init__.py": "from .core import Thing\nfrom . import work\n",
    "core.py": """
def thing():
    from .work import helper  # lazy, still upward
    return helper


_hidden = 1
""",
    "_private.py": "VALUE = 1\n",
    "layers/__init__.py": "from .dense import Dense\n",
    "layers/dense.py": """from .. import __version__
from ..core import _hidden
from .. import _private
X = _private.VALUE
""",
    "work/__init__.py": """import importlib
from ..layers import dense


def __getattr__(name):
    return 1
""",
    "work/loop.py": """from .. import core

Y = core._hidden


def make(m):
    class Local:
        pass
    return m._state
""",
    "work/cycle_a.py": "from .cycle_b import B\nA = 1\n",
    "work/cycle_b.py": "def f():\n    from .cycle_a import A\n    return A\nB = dense = None\n",
    "tools.py": """from .work import loop


class Tool:
    def __init__(self):
        self._state = 0
""",
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("src") / "pkg"
    for name, text in SYNTHETIC.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return analyse(root, "pkg", {"work": 1, "tools": 1})


def test_the_analysis_finds_cycles_including_lazy_imports(synthetic):
    assert ["pkg.work.cycle_a", "pkg.work.cycle_b"] in synthetic["cycles"]
    assert ["pkg.core", "pkg.layers", "pkg.layers.dense", "pkg.work"] in synthetic["cycles"]


def test_the_analysis_finds_upward_and_sideways_imports(synthetic):
    assert ("pkg.core:3", "pkg.work") in synthetic["upward"]  # core -> workflow, inside a function
    assert ("pkg.tools:1", "pkg.work.loop") in synthetic["upward"]  # another package of the same layer
    assert all(imp.startswith(("pkg.core", "pkg.tools")) for imp, _ in synthetic["upward"])  # work -> core is fine


def test_the_analysis_finds_root_reads_private_names_and_workarounds(synthetic):
    assert synthetic["root"] == ["pkg.layers.dense:1"]
    assert "pkg.layers.dense:2 imports _hidden" in synthetic["private"]
    assert "pkg.work.loop:3 uses core._hidden" in synthetic["private"]
    assert "pkg.work.loop:9 uses m._state (defined in another module)" in synthetic["private"]
    assert not any("_private" in line for line in synthetic["private"])  # a private module is fine
    found = "\n".join(synthetic["workarounds"])
    assert "pkg.work:1 imports importlib" in found
    assert "module-level __getattr__" in found and "class Local inside make()" in found
    assert len(synthetic["private"]) == 3 and len(synthetic["workarounds"]) == 3


# ------------------------------------------------------------------ nnumpy itself
@pytest.fixture(scope="module")
def house():
    return analyse(SOURCE, PACKAGE, WORKFLOW_LAYERS)


def test_no_import_cycles(house):
    assert house["cycles"] == [], "import cycles (strongly connected modules): " + repr(house["cycles"])


def test_imports_point_down_the_layers(house):
    assert house["upward"] == [], (
        "imports that point up the layers of docs/dev/ARCHITECTURE.md (core -> workflow, or into a "
        f"workflow package of the same or a higher layer): {house['upward']}"
    )


def test_no_submodule_reads_the_package_root(house):
    assert house["root"] == [], f"import from the package root (use the home module, e.g. _version): {house['root']}"


def test_private_names_stay_in_their_module(house):
    assert house["private"] == [], f"private names used outside their module (make them public): {house['private']}"


def test_no_import_workarounds(house):
    assert house["workarounds"] == [], f"importlib-style workarounds: {house['workarounds']}"


def test_the_listed_workflow_packages_exist():
    modules = find_modules(SOURCE, PACKAGE)
    tops = {top_name(m) for m in modules}
    assert set(WORKFLOW_LAYERS) <= tops, f"WORKFLOW_LAYERS names what is not there: {set(WORKFLOW_LAYERS) - tops}"


def test_architecture_md_lists_every_package_and_top_level_module():
    text = (Path(__file__).parents[1] / "docs" / "dev" / "ARCHITECTURE.md").read_text()
    tops = {top_name(m) for m in find_modules(SOURCE, PACKAGE)} - {""}
    missing = sorted(t for t in tops if f"{t}/" not in text and f"{t}.py" not in text)
    assert missing == [], f"docs/dev/ARCHITECTURE.md does not mention {missing}"
