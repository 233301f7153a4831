"""The architecture's rules, read off the source with `ast` (docs/architecture.md):
the import graph has no circle and points `tuner` -> `keras_regnet` -> keras;
no module imports another's private name; `design` imports no Keras; Keras
Tuner's internals are reached only through `tuner/kt_adapter.py`; modules
stay small; every block type has a builder and its complexity twin."""

import ast
import importlib
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("keras_regnet", "tuner")
MAX_LINES = 450
MAX_CLI_LINES = 300


def _modules():
    """{module name: path} of every module of the two packages."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    found[module.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(path):
    """`(module imported, [names imported from it])` of every import
    statement in the file, at any depth (functions included)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [alias.name for alias in node.names]))
    return out


def _own(name):
    """`name` (a module, or a module's attribute) as one of our modules."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _graph():
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for imported, names in _imports(path):
            for target in [imported] + [f"{imported}.{n}" for n in names]:
                own = _own(target)
                if own and own != module:
                    edges.add(own)
        graph[module] = edges
    return graph


def test_the_import_graph_has_no_circle():
    graph = _graph()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            # A package imports its own submodules to re-export them.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                if not all(a.startswith(b + ".") or b.startswith(a + ".")
                           for a, b in zip(cycle, cycle[1:])):
                    pytest.fail("import circle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_arrows_point_one_way():
    graph = _graph()
    for module, edges in graph.items():
        if module.startswith("keras_regnet"):
            assert not [e for e in edges if e.startswith("tuner")], module
            assert not any(m.startswith("keras_tuner") for m, _ in _imports(MODULES[module])), module
        if module.startswith("keras_regnet.design"):
            assert not [e for e in edges if not e.startswith("keras_regnet.design")], module
            heavy = [m for m, _ in _imports(MODULES[module])
                     if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch")]
            assert not heavy, (module, heavy)
    # The runtime probes sit below the models.
    assert not [e for e in graph["keras_regnet.runtime"] if e.startswith("keras_regnet.models")]


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for module, path in MODULES.items():
        for imported, names in _imports(path):
            if imported.split(".")[0] in PACKAGES:
                offenders += [f"{module}: from {imported} import {n}" for n in names
                              if n.startswith("_")]
            offenders += [f"{module}: import {imported}" for part in imported.split(".")
                          if part.startswith("_") and part != "__main__"]
    assert not offenders


def test_keras_tuner_and_keras_internals_only_in_the_adapter():
    """`keras_tuner.src`, `keras.src` and private Keras Tuner members are
    reached through `tuner/kt_adapter.py`; elsewhere only its `HOOKS`,
    overridden, appear."""
    from tuner.kt_adapter import HOOKS

    offenders = []
    for module, path in MODULES.items():
        if not module.startswith("tuner") or module == "tuner.kt_adapter":
            continue
        source = open(path, encoding="utf-8").read()
        offenders += [f"{module}: {m}" for m, _ in _imports(path)
                      if m.startswith(("keras_tuner.src", "keras.src"))]
        tree = ast.parse(source)
        ours = {n.name for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        ours |= {t.attr for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Attribute)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and node.attr not in ours
                    and node.attr not in HOOKS and not (
                        isinstance(node.value, ast.Name) and node.value.id == "os")):
                offenders.append(f"{module}:{node.lineno}: .{node.attr}")
    assert not offenders


def test_modules_stay_small():
    sizes = {m: sum(1 for _ in open(p, encoding="utf-8")) for m, p in MODULES.items()}
    assert sizes["tuner.cli"] < MAX_CLI_LINES
    assert not {m: n for m, n in sizes.items() if n > MAX_LINES}


def test_every_block_type_has_a_builder_and_a_complexity_twin():
    from keras_regnet.design.spec import BLOCK_TYPES
    from keras_regnet.models import blocks

    counting = importlib.import_module("keras_regnet.design.complexity")
    assert set(blocks.BLOCKS) == set(counting.BLOCKS) == set(BLOCK_TYPES)
    for kind in BLOCK_TYPES:
        build, count = blocks.BLOCKS[kind], counting.BLOCKS[kind]
        assert build.__name__ == count.__name__, kind


def test_every_weights_kind_has_a_reader():
    from keras_regnet.weights import formats, kinds

    named = set(re.findall(r'return "(\w+)"', open(formats.__file__).read()))
    assert named == set(kinds.KINDS)


def test_statistics_and_the_command_line_load_no_heavy_library():
    """`tuner.analysis.stats` needs no Matplotlib, and the search's config
    and folder checks no Keras: both answer before those load."""
    code = ("import sys\nimport tuner.analysis.stats, tuner.config, tuner.folder, tuner.cli\n"
            "print(sorted({'matplotlib', 'keras', 'tensorflow', 'keras_tuner'} "
            "& {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
