"""Write docs/reference.md from the config dataclasses and conf/ (`make reference`); --check only compares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gdro.config.reference import render_reference

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/reference.md is out of date")
    args = parser.parse_args(argv)
    text = render_reference()
    if args.check:
        current = REFERENCE.read_text() if REFERENCE.exists() else ""
        if current != text:
            print(f"{REFERENCE} is out of date: run `make reference`", file=sys.stderr)
            return 1
        return 0
    REFERENCE.write_text(text)
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
