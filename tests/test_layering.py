"""Imports between the apps under crm/ point one way (ARCHITECTURE.md, "Invariants").

Read from the source with ``ast`` (module-level and function-level imports alike; migrations
aside, they are generated): the customers core imports no other crm app, and the apps'
dependency graph has no cycle. An app tells the apps that depend on it through a hook
(``caravan.hooks``) or a registry (``crm.customers.screen_pop``, ``crm.customers.list_filters``,
``crm.segments.filters.register``), connected in their ``ready()``.
"""
import ast
from collections import defaultdict
from pathlib import Path

CRM = Path(__file__).resolve().parent.parent / "crm"
APPS = sorted(p.name for p in CRM.iterdir() if (p / "apps.py").exists())


def _imported(node: ast.AST, package: list[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = package[: len(package) - node.level + 1] if node.level else []
        module = ".".join(base + ([node.module] if node.module else []))
        return [module] + [f"{module}.{alias.name}" for alias in node.names]
    return []


def app_imports() -> dict[str, dict[str, str]]:
    """{app: {imported app: "where (file:line)"}} over every crm app's Python files."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for app in APPS:
        for path in sorted((CRM / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(CRM.parent).with_suffix("").parts)
            package = parts[:-1]
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                for module in _imported(node, package):
                    names = module.split(".")
                    if len(names) > 1 and names[0] == "crm" and names[1] in APPS and names[1] != app:
                        graph[app].setdefault(names[1], f"{path.relative_to(CRM.parent)}:{node.lineno}")
    return graph


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts (["a", "b", "a"]), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_names_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_function_level_and_relative_imports():
    graph = app_imports()
    assert "customers" in graph["tiers"]  # tiers/apps.py imports crm.customers in ready()
    assert "pipeline" in graph["trips"]
    assert set(APPS) >= {"customers", "care", "pipeline", "tiers", "trips"}


def test_the_customers_core_imports_no_other_crm_app():
    found = app_imports()["customers"]
    assert not found, ("crm.customers must not import the apps that depend on it; give them a hook or a registry "
                       "(caravan.hooks, crm.customers.screen_pop, crm.customers.list_filters) instead: " +
                       ", ".join(f"{other} ({where})" for other, where in sorted(found.items())))


def test_no_cycle_among_crm_apps():
    graph = app_imports()
    edges = {app: set(graph[app]) for app in APPS}
    cycle = find_cycle(edges)
    assert cycle is None, ("import cycle among crm apps: " + " → ".join(cycle) + " (" +
                           "; ".join(f"{a}→{b} at {graph[a][b]}" for a, b in zip(cycle, cycle[1:])) +
                           "). Let the lower app announce a hook that the higher one connects in its ready().")
