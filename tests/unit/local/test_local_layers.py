"""The two halves of tinker.local stay apart: compute imports nothing of the server (nor of the
wire types), and the server reaches compute only through compute.backend."""

from __future__ import annotations

import ast
import pathlib

import tinker.local

ROOT = pathlib.Path(tinker.local.__file__).parent


def _imports(package: str) -> dict[str, set[str]]:
    """Module file -> every absolute module name it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.name] = names
    return found


def test_compute_imports_neither_the_server_nor_the_wire_types() -> None:
    modules = _imports("compute")
    assert {"backend.py", "trainer.py", "transformer.py"} <= set(modules)
    for name, imported in modules.items():
        outside = {
            module
            for module in imported
            if module.startswith(("tinker.local.server", "tinker.types", "tinker._wire"))
        }
        assert not outside, f"compute/{name} imports {sorted(outside)}"


def test_server_uses_compute_only_through_its_backend_module() -> None:
    modules = _imports("server")
    assert {"engine.py", "routes.py", "runs.py"} <= set(modules)
    for name, imported in modules.items():
        compute = {module for module in imported if module.startswith("tinker.local.compute")}
        assert compute <= {
            "tinker.local.compute.backend",
            *(m for m in compute if m.startswith("tinker.local.compute.backend.")),
        }, f"server/{name} imports {sorted(compute)}"
