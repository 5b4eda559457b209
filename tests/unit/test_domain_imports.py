"""`domain/` imports only the standard library and itself: an allow-list, so that a third-party
package added there (an HTTP client, a framework) fails here, whatever its name."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import keyport.domain

DOMAIN = Path(keyport.domain.__file__).parent


def imported_modules(source: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or module.startswith("keyport.domain")


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    sources = sorted(DOMAIN.rglob("*.py"))
    assert len(sources) > 10  # the domain is where it should be
    strays = {
        f"{source.relative_to(DOMAIN)}: {module}"
        for source in sources
        for module in imported_modules(source)
        if not allowed(module)
    }
    assert strays == set()


def test_the_allow_list_refuses_a_third_party_package() -> None:
    assert not allowed("httpx") and not allowed("keyport.services.ports")
    assert allowed("hashlib") and allowed("keyport.domain.keys")
