"""The import rule of the architecture, read from the source with `ast`.

Stages, left to right: common (the ground floor) -> graphstore -> sampler ->
worker -> gpu_consumer -> serving.  A stage imports only stages to its left
and `monitoring`; `monitoring` stands beside them and imports only `common`;
only `sagewalk` (the command line, the config schema, the daemons) imports
everything, and nothing imports it.  And no two modules import each other,
directly or round a longer circle, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("common", "graphstore", "sampler", "worker", "gpu_consumer", "serving")
PACKAGES = ORDER + ("monitoring", "sagewalk")


def allowed(importer: str) -> set[str]:
    """Top-level packages a module of package `importer` may import."""
    if importer == "sagewalk":
        return set(PACKAGES)
    if importer == "monitoring":
        return {"common", "monitoring"}
    left = set(ORDER[:ORDER.index(importer) + 1])
    return left if importer == "common" else left | {"monitoring"}


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `packages` under root."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules `path` imports anywhere in it (function-level imports
    included: a lazy import still makes a circle).  `from pkg import mod`
    counts as importing pkg.mod when that is a module."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:   # `import a.b.c` of a name in a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    files = module_files(root, packages)
    known = set(files)
    return {name: imports(path, name, known) for name, path in files.items()}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, targets in sorted(graph.items()):
        package = name.split(".")[0]
        for target in sorted(targets):
            if target.split(".")[0] not in allowed(package):
                bad.append(f"{name} imports {target}")
    return bad


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# -- the project ---------------------------------------------------------------

def test_no_stage_imports_the_command_line_package_and_every_import_points_left():
    assert layer_violations(import_graph(ROOT)) == []


def test_the_ground_floor_imports_nothing_of_the_project():
    graph = import_graph(ROOT)
    assert {t for n, ts in graph.items() if n.split(".")[0] == "common" for t in ts
            if t.split(".")[0] != "common"} == set()


def test_no_import_circles():
    assert circles(import_graph(ROOT)) == []


# -- the checker itself, on a tree made for it ------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_checker_finds_a_stage_importing_sagewalk_or_a_stage_to_its_right(tmp_path):
    root = _tree(tmp_path, {
        "sagewalk/__init__.py": "", "sagewalk/errors.py": "",
        "worker/__init__.py": "", "serving/__init__.py": "", "serving/index.py": "",
        "worker/producer.py": "def f():\n    from sagewalk.errors import X\n",
        "worker/batch.py": "from serving import index\n",
        "serving/embed.py": "import worker.batch\nfrom monitoring import hook\n",
        "monitoring/__init__.py": "", "monitoring/hook.py": "import worker\n"})
    assert layer_violations(import_graph(root)) == [
        "monitoring.hook imports worker", "worker.batch imports serving.index",
        "worker.producer imports sagewalk.errors"]


def test_checker_finds_circles_through_lazy_and_relative_imports(tmp_path):
    root = _tree(tmp_path, {
        "graphstore/__init__.py": "",
        "graphstore/a.py": "from graphstore.b import f\n",
        "graphstore/b.py": "def f():\n    from . import c\n",
        "graphstore/c.py": "import graphstore.a\n",
        "graphstore/d.py": "from graphstore import a\n"})
    assert circles(import_graph(root)) == [["graphstore.a", "graphstore.b", "graphstore.c"]]


def test_the_config_schema_and_the_cli_parser_import_nothing_heavy():
    """sagewalk.config reads every stage's section: loading it (and `sagewalk
    --help`) must not pull in numpy, torch or numba through a stage package."""
    import os
    import subprocess
    import sys
    code = ("import sys, sagewalk.config, sagewalk.cli; sagewalk.cli.build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'torch', 'numba', 'zmq', 'pyarrow'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
