"""The layout shows the design: packages in layers, and every import points down.

    interfaces  the chungsuc command, the webhook server
    web         the public site the server mounts: pages and open data
    app         settings, services, the runtime (channels and jobs of a process)
    handlers    the features (they know no messenger)
    channels    Telegram, Zalo, the terminal: adapters and their transports
    delivery    the one outbox: notices and broadcasts, sender, limiter, digests, scheduler
    core        the conversation: what comes in and out, steps, payloads, dispatch, intents
    content     reference data, FAQ, news, campaign files, import, export, sample, templates
    storage     tables and queries
    domain      amounts, dates, text, markup, the clock, the catalogs

A module may import from its own layer and the layers below. Imports under
`if TYPE_CHECKING:` are for annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [
    "bot.interfaces",
    "bot.web",
    "bot.app",
    "handlers",
    "bot.channels",
    "bot.delivery",
    "bot.core",
    "bot.content",
    "bot.storage",
    "bot.domain",
]


def layer(module: str) -> int | None:
    for index, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return index
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every import that runs, wherever it stands."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for body in node.body for child in ast.walk(body)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_every_module_is_in_a_layer() -> None:
    strays = [
        module_name(p)
        for folder in ("bot", "handlers")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in p.parts and p.name != "__init__.py" and layer(module_name(p)) is None
    ]
    assert strays == []


def test_imports_point_down() -> None:
    upward = []
    for folder in ("bot", "handlers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            here = module_name(path)
            mine = layer(here)
            if mine is None:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for line, imported in runtime_imports(tree):
                theirs = layer(imported)
                if theirs is not None and theirs < mine:
                    upward.append(f"{path.relative_to(ROOT)}:{line} {here} → {imported}")
    assert upward == [], "\n".join(upward)


def test_the_cli_does_not_import_itself_in_a_circle() -> None:
    cli = ROOT / "bot" / "interfaces" / "cli"
    main = runtime_imports(ast.parse((cli / "main.py").read_text(encoding="utf-8")))
    for part in ("broadcast.py", "channels.py"):
        used = {m for _line, m in runtime_imports(ast.parse((cli / part).read_text("utf-8")))}
        assert "bot.interfaces.cli.main" not in used, part
    assert main  # the command wires its parts together
