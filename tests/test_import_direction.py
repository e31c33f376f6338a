"""Imports run one way: lower layers never import the call layer, the runner or the CLI.

Checked on the source text with `ast`, so an import inside a function counts as much as
one at the top, and nothing has to be imported to be checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

# Everything a request needs below the call layer: records and errors, the transport
# interface, job config, the provider translators and the stages around the call.
LOWER = [
    "records",
    "errors",
    "transport",
    "config",
    "providers",
    "chunk",
    "limit",
    "merge",
    "write",
    "read",
    "accounting",
    "cache",
    "storage",
]
UPPER = ("pipeline.call", "pipeline.run", "pipeline.runner", "pipeline.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement in `source` (the text of `module`) names, wherever
    the statement is, relative imports resolved; `from pipeline import call` names
    pipeline.call too."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    return imported_modules(source, module_name(path), path.name == "__init__.py")


def is_upper(module: str) -> bool:
    return any(module == upper or module.startswith(upper + ".") for upper in UPPER)


def files_of(layer: str) -> list[Path]:
    folder = PACKAGE / layer
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{layer}.py"]


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layer_does_not_import_call_runner_or_cli(layer):
    files = files_of(layer)
    assert files and all(f.is_file() for f in files), f"no source files for {layer}"
    wrong = {
        f"{f.relative_to(PACKAGE.parent)} imports {m}"
        for f in files
        for m in imports_of(f)
        if is_upper(m)
    }
    assert not wrong, sorted(wrong)


def test_call_layer_does_not_import_the_runner_or_cli():
    wrong = {
        f"{f.relative_to(PACKAGE.parent)} imports {m}"
        for f in files_of("call")
        for m in imports_of(f)
        if m.startswith(("pipeline.run", "pipeline.cli"))
    }
    assert not wrong, sorted(wrong)


def test_the_check_sees_function_level_relative_and_package_imports():
    source = (
        "import pipeline.records\n"
        "def late():\n"
        "    from pipeline.call.client import RerankClient\n"
        "    from ..run import run_job\n"
        "    from pipeline import cli\n"
    )
    found = imported_modules(source, "pipeline.chunk.probe")
    assert {m for m in found if is_upper(m)} == {
        "pipeline.call.client",
        "pipeline.call.client.RerankClient",
        "pipeline.run",
        "pipeline.run.run_job",
        "pipeline.cli",
    }
    assert "pipeline.records" in found
