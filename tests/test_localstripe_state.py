"""localstripe keeps its state in the checkout's var/ (issue 20): its own fixed /tmp/localstripe.pickle
made two `make run`s on one machine share, and overwrite, each other's Stripe objects."""
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from infra import devenv
from tests.servers import ROOT, free_port, stop, wait_for_port


def test_make_run_keeps_localstripe_state_in_the_checkouts_var(tmp_path):
    command = devenv.localstripe_command(8420)
    state = Path(command[command.index("--state") + 1])
    assert state == devenv.VAR / "localstripe.pickle"
    assert command[command.index("--port") + 1] == "8420" and "--from-scratch" not in command
    other = devenv.localstripe_command(8421, var=tmp_path / "other-checkout" / "var")
    assert Path(other[other.index("--state") + 1]) == tmp_path / "other-checkout" / "var" / "localstripe.pickle"


class _Localstripe:
    """A localstripe started as `make run` starts it, with its state in ``state``."""

    def __init__(self, state: Path, log: Path):
        self.port = free_port()
        command = [sys.executable, "-m", "infra.localstripe_state", "--state", str(state), "--port", str(self.port)]
        self.log = open(log, "ab")
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, log, "localstripe", timeout=30)

    def call(self, method: str, path: str, data: dict | None = None) -> dict:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method=method,
                                         headers={"Authorization": "Bearer sk_test_caravan"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def customer_ids(self) -> set[str]:
        return {c["id"] for c in self.call("GET", "/v1/customers?limit=100")["data"]}

    def stop(self):
        stop(self.process)
        self.log.close()


def test_two_checkouts_localstripes_keep_their_own_state(tmp_path):
    one, two = tmp_path / "one" / "var" / "localstripe.pickle", tmp_path / "two" / "var" / "localstripe.pickle"
    first = _Localstripe(one, tmp_path / "one.log")
    second = _Localstripe(two, tmp_path / "two.log")
    try:
        mine = first.call("POST", "/v1/customers", {"email": "one@checkout.test"})["id"]
        theirs = second.call("POST", "/v1/customers", {"email": "two@checkout.test"})["id"]
        assert mine in first.customer_ids() and theirs not in first.customer_ids()
        assert theirs in second.customer_ids() and mine not in second.customer_ids()
    finally:
        first.stop()
        second.stop()
    assert one.exists() and two.exists()
    shared = Path("/tmp/localstripe.pickle")  # localstripe's own file, where they both used to write
    assert not (shared.exists() and mine.encode() in shared.read_bytes())
    # The next `make run` of checkout one finds its customer again; checkout two's never sees it.
    again = _Localstripe(one, tmp_path / "one-again.log")
    try:
        ids = again.customer_ids()
        assert mine in ids and theirs not in ids
    finally:
        again.stop()
