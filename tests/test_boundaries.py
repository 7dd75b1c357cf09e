"""Architecture contracts, checked on the source (an AST scan in the spirit of import-linter):
idm_host never imports Qt; gui never imports torch or idm_host's model; public names import."""
from __future__ import annotations

import ast
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


@pytest.mark.parametrize("path", sorted((REPO / "gui").rglob("*.py")) or [None], ids=str)
def test_gui_never_imports_torch_or_model(path):
    if path is None:
        pytest.skip("no gui yet")
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
