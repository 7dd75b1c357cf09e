"""Architecture contracts, checked on the source (an AST scan in the spirit of import-linter):
idm_host never imports Qt; gui never imports torch or idm_host's model; public names import; the
layers of docs/ARCHITECTURE.md's module map hold and no modules import each other round a loop."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                pkg = path.relative_to(REPO).with_suffix("").parts[:-node.level]
                base = ".".join(pkg + ((base,) if base else ()))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("path", sorted((REPO / "idm_host").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_engine_never_imports_qt(path):
    bad = {n for n in imports(path) if n.split(".")[0] in ("PyQt6", "PySide6", "pyqtgraph", "gui")}
    # the gui launcher command is the one place allowed to start the app (lazily)
    if path.name == "gui.py" and path.parent.name == "commands":
        bad = {n for n in bad if n.split(".")[0] != "gui"}
    assert not bad, f"{path} imports {bad}"


GUI_FILES = sorted((REPO / "gui").rglob("*.py"))


def test_there_is_a_gui_to_check():
    assert len(GUI_FILES) > 10, "gui/ is missing: the GUI checks below would check nothing"


@pytest.mark.parametrize("path", GUI_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_gui_never_imports_torch_or_model(path):
    bad = {n for n in imports(path) if n.split(".")[0] == "torch" or n.startswith("idm_host.model.")
           or n == "idm_host.model"}
    assert not bad, f"{path} imports {bad}"


def test_public_names_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, idm_host; assert 'torch' not in sys.modules, 'import idm_host pulled torch';"
            "[getattr(idm_host, n) for n in idm_host.__all__]; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# ------------------------------------------------------------------------------- layers and loops
#: Imports that break a rule on purpose or until their owner moves them: (importer, imported): why.
EXCEPTIONS = {
    ("idm_host.commands.gui", "gui.app"): "the `idm-host gui` launcher starts the app (lazily)",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for top in ("idm_host", "gui") for p in sorted((REPO / top).rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    t = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"))


def module_imports(name: str) -> tuple[dict[str, int], set[str]]:
    """``({imported project module: line}, {those imported only under TYPE_CHECKING})`` of module ``name``
    (imports inside functions included)."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    runtime: dict[str, int] = {}
    typing: dict[str, int] = {}

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in MODULES:
            dotted = dotted.rpartition(".")[0]
        return dotted if dotted and dotted != name else None

    def visit(node: ast.AST, under_tc: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                for c in child.body:
                    visit_one(c, True)
                for c in child.orelse:
                    visit_one(c, under_tc)
            else:
                visit_one(child, under_tc)

    def visit_one(child: ast.AST, under_tc: bool) -> None:
        names: list[str] = []
        if isinstance(child, ast.Import):
            names = [a.name for a in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                pkg = package[:len(package) - (child.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in child.names]
            if not any(resolve(n) not in (None, resolve(base)) for n in names):
                names.append(base)  # `from pkg import name` depends on pkg unless name is a submodule
        for n in names:
            target = resolve(n)
            if target is not None:
                (typing if under_tc else runtime).setdefault(target, child.lineno)
        visit(child, under_tc)

    visit(ast.parse(path.read_text(), str(path)), False)
    return {**typing, **runtime}, set(typing) - set(runtime)


def layer_table() -> dict[str, int]:
    """``{module or package: layer}`` from docs/ARCHITECTURE.md's module map."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    rows = re.findall(r"^\| `([\w.]+)` \| (\d+) \|", text, flags=re.M)
    assert rows, "docs/ARCHITECTURE.md has no module map (| `module` | layer | owns |)"
    return {m: int(layer) for m, layer in rows}


def layer_of(name: str, table: dict[str, int]) -> int | None:
    """The layer of the most specific entry naming ``name`` or a package above it."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in table:
            return table[".".join(parts[:i])]
    return None


GRAPH = {name: module_imports(name) for name in MODULES}


def test_every_module_is_in_the_module_map():
    table = layer_table()
    missing = sorted(m for m in MODULES if layer_of(m, table) is None)
    assert not missing, f"add these to docs/ARCHITECTURE.md's module map (with a layer): {missing}"
    unknown = sorted(m for m in table if m not in MODULES)
    assert not unknown, f"docs/ARCHITECTURE.md's module map names modules that do not exist: {unknown}"


def test_no_lower_layer_imports_a_higher_one():
    table = layer_table()
    bad = []
    for name, (found, _) in GRAPH.items():
        mine = layer_of(name, table)
        for target, line in found.items():
            theirs = layer_of(target, table)
            if mine is not None and theirs is not None and theirs > mine and (name, target) not in EXCEPTIONS:
                bad.append(f"{MODULES[name].relative_to(REPO)}:{line}: {name} (layer {mine}) imports "
                           f"{target} (layer {theirs})")
    assert not bad, "imports against the layers of docs/ARCHITECTURE.md:\n" + "\n".join(bad)


def import_loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        loops.append(sorted(comp))
    return loops


def test_no_import_loops():
    runtime = {name: {t for t in found if t not in typing_only and (name, t) not in EXCEPTIONS}
               for name, (found, typing_only) in GRAPH.items()}
    loops = import_loops(runtime)
    lines = []
    for loop in loops:
        members = set(loop)
        for m in loop:
            found = GRAPH[m][0]
            lines += [f"  {MODULES[m].relative_to(REPO)}:{found[t]}: {m} imports {t}"
                      for t in sorted(runtime[m] & members)]
    assert not loops, f"import loops: {loops}\n" + "\n".join(lines)


def test_the_loop_finder_finds_loops():
    assert import_loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_loops({"a": {"b"}, "b": set()}) == []


def test_exceptions_are_still_needed():
    stale = [pair for pair in EXCEPTIONS if pair[1] not in GRAPH.get(pair[0], ({}, set()))[0]]
    assert not stale, f"these imports are gone; take them off EXCEPTIONS: {stale}"
