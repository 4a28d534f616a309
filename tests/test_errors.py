"""Every exception the package raises is a SamuelError, so the engine's nets and the CLI can
report it as a user-facing message (issue 11, item 3).

The scan reads each module's source: ``raise X(...)`` / ``raise X`` must name a SamuelError
subclass. A bare ``raise`` and re-raising the variable an enclosing ``except ... as name`` bound
are fine: they pass on what something else raised.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import typing
from pathlib import Path

import pytest

import samuel_live
from samuel_live.errors import SamuelError

PACKAGE = Path(samuel_live.__file__).parent
ALLOWED = {
    # argparse's contract: ArgumentParser.error() ends the process with status 2
    ("samuel_live.cli", "SystemExit"),
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _raise_contexts(tree: ast.AST) -> dict[ast.Raise, dict[str, ast.expr | None]]:
    """For each raise, the names known to hold an exception there: bound by an enclosing
    ``except ... as name`` (None) or checked by an enclosing ``if isinstance(name, X)`` (X)."""
    out: dict[ast.Raise, dict[str, ast.expr | None]] = {}

    def visit(node: ast.AST, known: dict[str, ast.expr | None]) -> None:
        if isinstance(node, ast.ExceptHandler) and node.name:
            known = {**known, node.name: None}
        if isinstance(node, ast.Raise):
            out[node] = known
        if isinstance(node, ast.If) and _isinstance_check(node.test):
            call = node.test
            assert isinstance(call, ast.Call) and isinstance(call.args[0], ast.Name)
            for child in node.body:
                visit(child, {**known, call.args[0].id: call.args[1]})
            for child in node.orelse:
                visit(child, known)
            visit(node.test, known)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, known)

    visit(tree, {})
    return out


def _isinstance_check(test: ast.expr) -> bool:
    return (isinstance(test, ast.Call) and isinstance(test.func, ast.Name)
            and test.func.id == "isinstance" and len(test.args) == 2
            and isinstance(test.args[0], ast.Name))


def _namespace(module: object, tree: ast.AST) -> dict[str, object]:
    """Module globals, builtins, and names imported anywhere (function-local imports too)."""
    names: dict[str, object] = {**vars(builtins), **vars(module)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            try:
                source = importlib.import_module(node.module)
            except ImportError:  # an optional dependency (demucs ...): nothing raised from it
                continue
            for alias in node.names:
                if hasattr(source, alias.name):
                    names.setdefault(alias.asname or alias.name, getattr(source, alias.name))
    return names


def _resolve(names: dict[str, object], target: ast.expr) -> object:
    """The object an exception expression names; a function stands for its return type."""
    if isinstance(target, ast.Name):
        obj = names[target.id]
    elif isinstance(target, ast.Attribute):
        obj = getattr(_resolve(names, target.value), target.attr)
    else:
        raise LookupError(ast.unparse(target))
    if inspect.isfunction(obj):
        return typing.get_type_hints(obj).get("return")
    return obj


def offending_raises(name: str, path: Path) -> list[str]:
    """``module:line: raise X`` for each raise in the module that is not a SamuelError."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = _namespace(importlib.import_module(name), tree)
    bad: list[str] = []
    for raise_node, known in _raise_contexts(tree).items():
        if raise_node.exc is None:
            continue  # bare re-raise
        exc = raise_node.exc
        target = exc.func if isinstance(exc, ast.Call) else exc
        if isinstance(target, ast.Name) and target.id in known:
            checked = known[target.id]
            if checked is None:
                continue  # re-raising what an except clause caught
            target = checked  # raising a value an isinstance() check vouched for
        where = f"{name}:{raise_node.lineno}: raise {ast.unparse(target)}"
        if (name, ast.unparse(target)) in ALLOWED:
            continue
        try:
            obj = _resolve(names, target)
        except (AttributeError, KeyError, LookupError, NameError):
            bad.append(f"{where} (cannot tell what it names; raise a SamuelError subclass)")
            continue
        if not (isinstance(obj, type) and issubclass(obj, SamuelError)):
            bad.append(where)
    return bad


@pytest.mark.parametrize(("name", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_every_raise_is_a_samuel_error(name: str, path: Path) -> None:
    assert offending_raises(name, path) == []


def test_the_scan_finds_foreign_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan itself: it flags builtins and unknown names, and lets re-raises through."""
    package = tmp_path / "scanme"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(
        "from samuel_live.errors import AudioInputError\n"
        "from samuel_live import errors\n"
        "def f(x):\n"
        "    if x == 1:\n"
        "        raise ValueError('no')\n"
        "    if x == 2:\n"
        "        raise NotImplementedError\n"
        "    if x == 3:\n"
        "        raise AudioInputError('fine')\n"
        "    if x == 4:\n"
        "        raise errors.ModelError('fine too')\n"
        "    try:\n"
        "        pass\n"
        "    except OSError as exc:\n"
        "        if x == 5:\n"
        "            raise\n"
        "        raise exc\n"
        "    cached = exc\n"
        "    if isinstance(cached, AudioInputError):\n"
        "        raise cached\n"
        "    if isinstance(cached, OSError):\n"
        "        raise cached\n"
        "    if x == 6:\n"
        "        raise _made(x)\n"
        "    err = KeyError('x')\n"
        "    raise err\n"
        "def _made(x) -> AudioInputError:\n"
        "    return AudioInputError(str(x))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    bad = offending_raises("scanme.mod", package / "mod.py")
    assert [b.split(": ", 1)[1] for b in bad] == [
        "raise ValueError",
        "raise NotImplementedError",
        "raise OSError",
        "raise err (cannot tell what it names; raise a SamuelError subclass)",
    ]


def test_argument_errors_still_match_except_value_error() -> None:
    """InvalidArgumentError replaced ValueError; callers catching that still catch it."""
    from samuel_live.audio.ringbuffer import RingBuffer
    from samuel_live.errors import InvalidArgumentError

    with pytest.raises(ValueError, match="must be positive") as info:
        RingBuffer(capacity=0)
    assert isinstance(info.value, InvalidArgumentError)
