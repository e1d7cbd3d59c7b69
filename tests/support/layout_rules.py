"""The house rules for velofarm/, read from the source with `ast` (nothing is imported).

Rooms and what each may import (README's Layout, ../STYLE.md's picture):
- worker_tools/: the standard library only (Python 3.9 grammar), nothing of velofarm, not even
  each other: each file is sent to a worker and runs alone;
- buildmaster/: the only room that may import buildbot, twisted or flask;
- cli/: the `velofarm` command; it may import velofarm.buildmaster (to print or start the farm),
  but buildbot, twisted and flask only through it;
- the pure rooms (spec, tags, release, publish, artifacts, onboard, images) and the shared leaves: never
  the Buildbot layer, never the face;
- the shared leaves (errors, names, secretstore, users) import only each other;
- the package root holds only the shared leaves; no module is over MAX_LINES lines.
Imports run one way: cli -> buildmaster -> pure rooms -> shared leaves.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 400
FRAMEWORKS = ("buildbot", "twisted", "flask")  # buildbot_worker, buildbot_www... count as buildbot
BUILDBOT_LAYER = "buildmaster"
FACE = "cli"
WORKER_TOOLS = "worker_tools"
PURE_ROOMS = ("spec", "tags", "release", "publish", "artifacts", "onboard", "images", WORKER_TOOLS)
LEAVES = ("errors", "names", "secretstore", "users")
ROOMS = (*PURE_ROOMS, BUILDBOT_LAYER, FACE)
OLDEST_WORKER_PYTHON = (3, 9)


@dataclass(frozen=True)
class Module:
    path: Path  # relative to the repository
    name: str  # dotted, e.g. velofarm.tags.semver
    room: str  # its first part under velofarm ("tags"), or the leaf's name for a root module
    source: str

    @property
    def is_leaf(self) -> bool:
        """A module right under velofarm/ (not a room's __init__)."""
        return len(self.path.parts) == 2 and self.path.name != "__init__.py"


def modules(repo: Path) -> list[Module]:
    found = []
    for path in sorted((repo / "velofarm").rglob("*.py")):
        rel = path.relative_to(repo)
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        room = parts[1] if len(parts) > 1 else ""
        found.append(Module(rel, ".".join(parts), room, path.read_text(encoding="utf-8")))
    return found


def imports(module: Module, tree: ast.Module) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import, at any depth (inside functions too)."""
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def is_framework(name: str) -> bool:
    top = name.split(".")[0]
    return any(top == f or top.startswith(f + "_") for f in FRAMEWORKS)


def import_problems(module: Module, line: int, name: str) -> list[str]:
    """What is wrong with one import of one module (empty when it is allowed)."""
    where, top = f"{module.path}:{line}: imports {name}", name.split(".")[0]
    inside = name.split(".")[1] if top == "velofarm" and name.count(".") else ""
    problems = []
    if module.room == WORKER_TOOLS and top != "__future__" and (
            top == "velofarm" or top not in sys.stdlib_module_names):
        problems.append(f"{where}: a worker tool imports only the standard library (it runs alone on "
                        "a worker, without velofarm or any installed package)")
    if is_framework(name) and module.room != BUILDBOT_LAYER:
        problems.append(f"{where}: only velofarm/{BUILDBOT_LAYER}/ imports {', '.join(FRAMEWORKS)}; "
                        f"move this code there (the face goes through velofarm.{BUILDBOT_LAYER})")
    if inside in (BUILDBOT_LAYER, FACE) and (module.room in PURE_ROOMS or module.is_leaf):
        problems.append(f"{where}: a pure module never imports the Buildbot layer or the face; move "
                        "the shared piece into the pure module (or a shared leaf) and import it from there")
    if inside == FACE and module.room == BUILDBOT_LAYER:
        problems.append(f"{where}: imports run one way (cli -> buildmaster): move the piece out of cli/")
    if inside and module.is_leaf and inside not in (*LEAVES, BUILDBOT_LAYER, FACE):  # else said above
        problems.append(f"{where}: a shared leaf imports only the other leaves ({', '.join(LEAVES)})")
    return problems


def module_problems(module: Module) -> list[str]:
    problems = []
    lines = module.source.count("\n") + (not module.source.endswith("\n") and bool(module.source))
    if lines > MAX_LINES:
        problems.append(f"{module.path}: {lines} lines, over {MAX_LINES}; split it by what it does")
    if module.is_leaf and module.room not in LEAVES:
        problems.append(f"{module.path}: the package root holds only the shared leaves "
                        f"({', '.join(LEAVES)}); put it in the room where it runs")
    if not module.is_leaf and module.room and module.room not in ROOMS:
        problems.append(f"{module.path}: velofarm/{module.room}/ is not a room of the layout; use one of "
                        f"{', '.join(ROOMS)}, or add it to tests/support/layout_rules.py and README's Layout")
    version = OLDEST_WORKER_PYTHON if module.room == WORKER_TOOLS else None
    try:
        tree = ast.parse(module.source, str(module.path), feature_version=version)
    except SyntaxError as exc:
        return [*problems, f"{module.path}:{exc.lineno}: not valid Python "
                           f"{'.'.join(map(str, version or sys.version_info[:2]))}: {exc.msg}"]
    for line, name in imports(module, tree):
        problems += import_problems(module, line, name)
    return problems


def layout_problems(repo: Path) -> list[str]:
    """Every broken house rule under repo/velofarm, one line each naming the file and the fix."""
    return [p for module in modules(repo) for p in module_problems(module)]
