"""Fail unless every package pinned in requirements-v28.txt is installed at its pin.

CI installs the pins before the project, so the tests run on them; this says so, or names each
package that moved (a newer version pulled in by the project's own install, for example).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Compare the installed versions with the pins; return the exit status (1: a pin moved)."""
    text = (ROOT / "requirements-v28.txt").read_text()
    pins = [Requirement(ln) for ln in (s.split("#")[0].strip() for s in text.splitlines()) if ln]
    moved = []
    for pin in pins:
        try:
            have = version(pin.name)
        except PackageNotFoundError:
            moved.append(f"{pin}: not installed")
            continue
        # a local label (torch's "+cpu") is no other version
        if not pin.specifier.contains(have.split("+")[0]):
            moved.append(f"{pin}: installed {have}")
    for m in moved:
        print(f"requirements-v28.txt: {m}", file=sys.stderr)
    print(f"requirements-v28.txt: {len(pins) - len(moved)} of {len(pins)} pins installed")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
