"""Put the checkout and its platform/ source root on the virtualenv's path (a .pth file).

``platform/`` is never a package (that would shadow the standard library's ``platform``);
its packages (caravan, accounts, console) are importable because platform/ itself is a path
entry. A .pth entry is appended after the standard library, so nothing is ever shadowed.
"""
import site
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
target = Path(site.getsitepackages()[0]) / "caravan-paths.pth"
target.write_text(f"{root}\n{root / 'platform'}\n")
print(f"wrote {target}", file=sys.stderr)
