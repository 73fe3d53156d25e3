"""The house rules of docs/architecture.md that import-linter and ruff do not check: no function
over 100 lines, no file over 600, and no import of lrfer's own modules hidden inside a function
(outside the CLI, whose commands import their library modules when they run, to start fast; and
a torch-free module of the runtime may import a module that loads torch where torch is asked for,
since the runtime must run where torch is not installed, docs/runtime.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "lrfer"
MAX_FUNCTION_LINES = 100
MAX_FILE_LINES = 600


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_the_rules_see_the_package():
    assert len(_sources()) > 40  # a wrong SRC would pass every rule below


def test_no_file_over_600_lines():
    long = {str(p.relative_to(SRC)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_over_100_lines():
    long = {}
    for path in _sources():
        for fn in _functions(ast.parse(path.read_text())):
            n = fn.end_lineno - fn.lineno + 1
            if n > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(SRC)}:{fn.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _target(path: Path, node: ast.ImportFrom) -> Path:
    """The file an ``import from`` inside ``path`` names (relative or ``lrfer.``-absolute)."""
    if node.level:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
    else:
        base = SRC.parent
    target = base.joinpath(*(node.module or "").split("."))
    return target / "__init__.py" if target.is_dir() else target.with_suffix(".py")


def _loads_torch(path: Path) -> bool:
    """Whether a module imports torch at its top level."""
    tree = ast.parse(path.read_text()) if path.is_file() else ast.Module(body=[], type_ignores=[])
    names = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 0]
    return any(name.split(".")[0] == "torch" for name in names)


def test_no_internal_import_inside_a_function():
    hidden = []
    for path in _sources():
        if path.relative_to(SRC).parts[0] == "cli" or path.name in ("cli.py", "__init__.py"):
            continue  # the CLI imports a command's modules when it runs; lrfer/__init__ keeps `import lrfer` light
        for fn in _functions(ast.parse(path.read_text())):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("lrfer")):
                    if not _loads_torch(path) and _loads_torch(_target(path, node)):
                        continue  # the runtime deferring the torch side until it is asked for
                    hidden.append(f"{path.relative_to(SRC)}:{node.lineno} in {fn.name}")
    assert not hidden, f"imports of lrfer modules inside functions (move them to the top of the module): {hidden}"


def test_the_torch_exception_sees_torch():
    """The exception above must recognise a module that loads torch, and one that does not."""
    assert _loads_torch(SRC / "device.py") and not _loads_torch(SRC / "infer" / "backends.py")
