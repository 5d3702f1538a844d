"""localstripe (the fake Stripe of `make run` and the tests) with its state in a file we name.

localstripe 1.x loads and saves its whole store in one fixed file, /tmp/localstripe.pickle, so two
`make run`s on one machine (two checkouts) would share, and overwrite, each other's customers and
subscriptions. This starts it with the store kept in ``--state`` instead: `make run` gives it the
checkout's var/localstripe.pickle (infra/devenv.py), the tests a temporary folder of their own.

    python -m infra.localstripe_state --state var/localstripe.pickle --port 8420 [--from-scratch]
"""
import argparse
import os
import pickle
import sys
from pathlib import Path


def keep_state_in(path: Path) -> None:
    """Make localstripe's store load from and save to ``path`` (written whole, then renamed into place)."""
    from localstripe import resources

    store_class = type(resources.store)
    if not (hasattr(store_class, "try_load_from_disk") and hasattr(store_class, "dump_to_disk")):
        raise SystemExit("This localstripe keeps its state differently: see infra/localstripe_state.py")
    path = Path(path).resolve()

    def try_load_from_disk(store):
        try:
            with open(path, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        dict.update(store, old)

    def dump_to_disk(store):
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(partial, "wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)

    store_class.try_load_from_disk = try_load_from_disk
    store_class.dump_to_disk = dump_to_disk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, type=Path, help="The file localstripe keeps its state in.")
    args, rest = parser.parse_known_args(argv)
    args.state.parent.mkdir(parents=True, exist_ok=True)
    keep_state_in(args.state)
    from localstripe import server

    sys.argv = [sys.argv[0], *rest]  # --port, --from-scratch: localstripe's own options
    server.start()


if __name__ == "__main__":
    main()
