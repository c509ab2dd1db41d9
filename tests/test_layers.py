"""The package's layers hold: each module imports only its own layer and the layers its
subpackage's docstring names on its `May import:` line (wire, config, internals,
storage, broker, rooms, api, process: each above the ones it may use)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "quartchat"
LAYERS = ["wire", "config", "internals", "storage", "broker", "rooms", "api", "process"]


def allowed_imports(layer: str) -> set[str]:
    """The layers named on the `May import:` line of the layer's docstring."""
    docstring = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
    assert docstring is not None, f"quartchat/{layer}/__init__.py says nothing"
    lines = [line for line in docstring.splitlines() if line.startswith("May import:")]
    assert len(lines) == 1, f"quartchat/{layer}/__init__.py needs one 'May import:' line"
    named = lines[0].removeprefix("May import:").strip().rstrip(".")
    if named == "nothing of quartchat":
        return set()
    if named == "every other layer":
        return set(LAYERS) - {layer}
    return {name.strip() for name in named.split(",")}


def imported_layers(path: Path, module: str = "") -> dict[str, int]:
    """Layer of every quartchat module `path` (module `module`, by default the one its
    place in the package names) imports -> the line of the first import."""
    module = module or ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rpartition(".")[0] if path.name != "__init__.py" else module[:-9]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                targets = [".".join(base + ([node.module] if node.module else []))]
            elif node.module:
                targets = [node.module]
            if targets == ["quartchat"]:  # from quartchat import <subpackage>
                targets = [f"quartchat.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            if parts[0] == "quartchat" and len(parts) > 1 and parts[1] in LAYERS:
                found.setdefault(parts[1], node.lineno)
    return found


def test_every_module_lives_in_a_layer() -> None:
    loose = sorted(
        path.name
        for path in PACKAGE.glob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    )
    assert loose == [], "modules outside the layers"
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()) == sorted(
        LAYERS
    )


def test_the_layers_form_a_ladder() -> None:
    """Each layer may import only layers below it, so no two layers import each other."""
    for index, layer in enumerate(LAYERS):
        assert allowed_imports(layer) <= set(LAYERS[:index]), layer


@pytest.mark.parametrize("layer", LAYERS)
def test_each_module_imports_only_what_its_layer_may(layer: str) -> None:
    allowed = allowed_imports(layer) | {layer}
    broken = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for imported, line in imported_layers(path).items():
            if imported not in allowed:
                where = path.relative_to(PACKAGE.parent)
                broken.append(f"{where}:{line} imports quartchat.{imported}")
    assert broken == [], f"quartchat/{layer} may import only {sorted(allowed)}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    assert "storage" not in imported_layers(PACKAGE / "wire" / "frames.py")
    fake = tmp_path / "fake.py"
    fake.write_text("from quartchat.storage.models import Room\nfrom ..api import errors\n")
    assert set(imported_layers(fake, "quartchat.wire.fake")) == {"storage", "api"}
