"""The import layering of portal/, written once as import-linter contracts in pyproject.toml, holds.

`lint-imports` checks the contracts; the test below it checks that the contract listing service modules still lists
every one of them, so a new module cannot slip past the rules by being forgotten.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"


def _contract(contract_id: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == contract_id)


def _matches(module: str, expression: str) -> bool:
    """import-linter's module expressions, as pyproject.toml uses them: `*` stands for one whole name."""
    names, pattern = module.split("."), expression.split(".")
    return len(names) == len(pattern) and all(p in ("*", n) for n, p in zip(names, pattern, strict=True))


def _capability_modules() -> list[str]:
    """The modules of the capability packages: every package of portal/ but the tables, the shared web layer and the
    migrations."""
    return sorted(
        f"portal.{path.parent.name}.{path.stem}"
        for path in PORTAL.glob("*/*.py")
        if path.parent.name not in ("models", "web", "migrations")
        and path.stem != "__init__"
        and (path.parent / "__init__.py").exists()
    )


def _is_view(module: str) -> bool:
    name = module.rsplit(".", 1)[1]
    return name == "views" or name.endswith("_views")


def test_import_contracts_hold() -> None:
    # `python -S` leaves out the .pth files of site-packages, the editable install's import hook among them: in a
    # virtualenv shared between git worktrees it maps `portal` to another checkout. Only this checkout is analysed.
    site_packages = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    result = subprocess.run(  # noqa: S603  (a fixed command line: this interpreter running the linter beside it)
        [sys.executable, "-S", str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sorted(site_packages))},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_of_a_capability_is_a_view_a_request_helper_or_a_service() -> None:
    services = set(_contract("services")["source_modules"])
    helpers = set(_contract("request-helpers")["source_modules"])
    modules = _capability_modules()
    views = [m for m in modules if _is_view(m)]

    unlisted = [m for m in modules if not _is_view(m) and m not in services | helpers]
    assert not unlisted, (
        f"add {unlisted} to the 'services' contract of pyproject.toml ('request-helpers' if it handles requests)"
    )
    assert not services & helpers, f"{services & helpers} cannot be both a service and a request helper"
    assert not (services | helpers) - set(modules), (
        f"pyproject.toml lists modules that are gone: {(services | helpers) - set(modules)}"
    )
    for contract_id, key in (
        ("services", "forbidden_modules"),
        ("request-helpers", "forbidden_modules"),
        ("views", "protected_modules"),
    ):
        expressions = _contract(contract_id)[key]
        missed = [v for v in views if not any(_matches(v, e) for e in expressions)]
        assert not missed, f"the '{contract_id}' contract's {key} in pyproject.toml miss the views {missed}"
