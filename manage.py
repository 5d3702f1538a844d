#!/usr/bin/env python
"""Django's command-line utility for Caravan."""
import os
import sys
from pathlib import Path

# platform/ is a source root, not a package (it would shadow the standard library's
# `platform`): put it on the path, after the standard library.
ROOT = Path(__file__).resolve().parent
for entry in (str(ROOT), str(ROOT / "platform")):
    if entry not in sys.path:
        sys.path.append(entry)

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
