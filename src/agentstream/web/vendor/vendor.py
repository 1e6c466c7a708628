"""Copy the chat page's third-party ES modules into ``../static/vendor`` (run by hand, never at
install time: the copies are committed, so the page needs no CDN and no build step).

    python src/agentstream/web/vendor/vendor.py           # install the pins, copy, check
    python src/agentstream/web/vendor/vendor.py --update  # after changing a pin: new sums
    python src/agentstream/web/vendor/vendor.py --check   # only check the committed copies

``npm ci`` installs exactly what ``package-lock.json`` pins (and checks each tarball's integrity
hash) into a temporary folder; the files below are copied from it, and their SHA-256 must match
``SHA256SUMS`` unless ``--update`` is given, so a copy never changes without a reviewed diff.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent / "static" / "vendor"
SUMS = HERE / "SHA256SUMS"
# (path inside node_modules, name in static/vendor)
FILES = (
    ("marked/lib/marked.esm.js", "marked.esm.js"),
    ("marked/LICENSE", "marked.LICENSE"),
    ("dompurify/dist/purify.es.mjs", "purify.es.mjs"),
    ("dompurify/LICENSE", "purify.LICENSE"),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded() -> dict[str, str]:
    """``SHA256SUMS`` as ``{name: digest}``."""
    sums: dict[str, str] = {}
    for line in SUMS.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name] = digest
    return sums


def mismatches() -> list[str]:
    """The copies in static/vendor that are missing or differ from ``SHA256SUMS``."""
    sums = recorded()
    wrong = [name for _, name in FILES if name not in sums]
    for name, digest in sums.items():
        path = STATIC / name
        if not path.exists() or sha256(path) != digest:
            wrong.append(name)
    return wrong


def install() -> Path:
    """``npm ci`` of the lockfile in a temporary folder; returns its node_modules."""
    work = Path(tempfile.mkdtemp(prefix="agentstream-vendor-"))
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / name, work / name)
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=work, check=True
    )
    return work / "node_modules"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="record the new copies' sums")
    parser.add_argument("--check", action="store_true", help="only check the committed copies")
    args = parser.parse_args()
    if not args.check:
        modules = install()
        try:
            STATIC.mkdir(parents=True, exist_ok=True)
            for source, name in FILES:
                shutil.copy(modules / source, STATIC / name)
        finally:
            shutil.rmtree(modules.parent)
        if args.update:
            SUMS.write_text("".join(f"{sha256(STATIC / n)}  {n}\n" for _, n in FILES))
    wrong = mismatches()
    if wrong:
        print(f"checksum mismatch (or missing): {', '.join(wrong)}", file=sys.stderr)
        return 1
    print(f"static/vendor matches SHA256SUMS ({len(FILES)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
