"""The package's layers point one way: ``data_prep`` (the offline prep tool) may import
``tts_gan``, never the reverse (issue 29). Read from the source with :mod:`ast`, so lazy
imports inside functions count too, and nothing is imported to check it."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tts_gan"
FORBIDDEN = "data_prep"


def _names_forbidden(name: str | None) -> bool:
    return name is not None and (name == FORBIDDEN or name.startswith(FORBIDDEN + "."))


def forbidden_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, module) of every import of ``data_prep`` in ``source``: ``import`` and ``from``
    statements anywhere (module level, functions, ``try`` blocks), and
    ``importlib.import_module`` / ``__import__`` called with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _names_forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _names_forbidden(node.module):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            arg = node.args[0]
            if (called in ("import_module", "__import__") and isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str) and _names_forbidden(arg.value)):
                found.append((node.lineno, arg.value))
    return found


def test_walker_flags_every_form_of_import_and_nothing_else() -> None:
    """Control: a synthetic module importing data_prep in each way is flagged line by line; the
    look-alikes (another package with that prefix, the word in a string) are not."""
    bad = "\n".join([
        "import os, data_prep",                                  # 1
        "from data_prep.festival_corpus import default_cache_dir",  # 2
        "def f():",                                              # 3
        "    import data_prep.pipeline as p",                    # 4
        "try:",                                                  # 5
        "    from data_prep import prep_main",                   # 6
        "except ImportError:",                                   # 7
        "    pass",                                              # 8
        "import importlib",                                      # 9
        "m = importlib.import_module('data_prep.pipeline')",     # 10
        "n = __import__('data_prep')",                           # 11
    ])
    assert forbidden_imports(bad) == [
        (1, "data_prep"), (2, "data_prep.festival_corpus"), (4, "data_prep.pipeline"),
        (6, "data_prep"), (10, "data_prep.pipeline"), (11, "data_prep")]
    ok = "\n".join([
        '"""Renders like data_prep/festival_corpus.py does."""',
        "import data_preparation",
        "from tts_gan import data",
        "from . import data_prep_helpers",
        "x = 'data_prep'",
        "importlib.import_module(name)",
    ])
    assert forbidden_imports(ok) == []


def test_no_module_of_the_package_imports_data_prep() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    # The walk sees the whole package, sub-packages included (not an empty glob).
    rel = {f.relative_to(PACKAGE).as_posix() for f in files}
    assert {"__init__.py", "train_lib.py", "cli/evaluate.py", "frontend/festival.py"} <= rel
    arrows = [f"{f.relative_to(PACKAGE.parent)}:{line}: imports {mod}"
              for f in files
              for line, mod in forbidden_imports(f.read_text(encoding="utf-8"), str(f))]
    assert arrows == [], "tts_gan must not import the prep tool:\n" + "\n".join(arrows)


MAX_LINES = 500  # issue 29: a module of one concern, readable in one sitting


def test_no_module_of_the_package_is_over_500_lines() -> None:
    """Control: the walk counts lines as ``wc -l`` does (a synthetic 501-line file is over)."""
    def lines(text: str) -> int:
        return text.count("\n")

    assert lines("x = 1\n" * (MAX_LINES + 1)) > MAX_LINES >= lines("x = 1\n" * MAX_LINES)
    over = {f.relative_to(PACKAGE.parent).as_posix(): n for f in sorted(PACKAGE.rglob("*.py"))
            if (n := lines(f.read_text(encoding="utf-8"))) > MAX_LINES}
    assert over == {}, f"modules over {MAX_LINES} lines: {over}"


def test_the_package_does_not_name_the_prep_tool() -> None:
    """The issue's plain check, ``grep -rn data_prep tts_gan/`` finds nothing: not even a docstring
    or an error message points a serving user at the prep tool's package. Control: the search
    finds the name in a line that has it."""
    def hits(text: str) -> list[int]:
        return [i for i, line in enumerate(text.splitlines(), 1) if FORBIDDEN in line]

    assert hits("x = 1\n# see data_prep.festival_corpus\n") == [2]
    found = {f.relative_to(PACKAGE.parent).as_posix(): h for f in sorted(PACKAGE.rglob("*"))
             if f.is_file() and f.suffix in (".py", ".hed", ".md", ".txt", ".json")
             and (h := hits(f.read_text(encoding="utf-8")))}
    assert found == {}, f"tts_gan names the prep tool's package: {found}"
