"""The suite's own shape: the servers' session fixtures are defined once, in conftest.

A session fixture imported into a test module (``from tests.servers import app_server``, or
``app_server = servers.app_server``) is defined again there, as that module's own: each module that did so
started a gunicorn of its own and kept it until the end of the run, and at the end each one waited 10 s for the
others' database connections to go. Read from the source with ``ast``.
"""
import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _session_fixtures(path: Path) -> set[str]:
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and any(
                        k.arg == "scope" and getattr(k.value, "value", None) == "session" for k in decorator.keywords):
                    found.add(node.name)
    return found


def _module_level_copies(path: Path, names: set[str]) -> list[str]:
    """Where the module binds one of ``names`` taken from tests.servers at its top level."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("servers"):
            found += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names if a.name in names]
        elif isinstance(node, ast.Assign):
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            found += [f"{path.name}:{node.lineno} binds servers.{v.attr}" for v in values
                      if isinstance(v, ast.Attribute) and v.attr in names]
    return found


def test_the_server_fixtures_are_found():
    assert {"app_server", "stripe_server", "pgbouncer"} <= _session_fixtures(TESTS / "servers.py")


def test_no_test_module_keeps_its_own_copy_of_a_server_session_fixture():
    names = _session_fixtures(TESTS / "servers.py")
    copies = [where for path in sorted(TESTS.glob("test_*.py")) for where in _module_level_copies(path, names)]
    assert copies == [], "import them in tests/conftest.py only"


def test_the_check_sees_both_ways_of_copying(tmp_path):
    module = tmp_path / "test_example.py"
    module.write_text("from tests.servers import app_server, free_port\nfrom tests import servers\n"
                      "app_server, committed = servers.app_server, servers.committed\n")
    assert _module_level_copies(module, {"app_server"}) == [
        "test_example.py:1 imports app_server", "test_example.py:3 binds servers.app_server"]
