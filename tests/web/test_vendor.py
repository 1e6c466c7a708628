"""The page's vendored modules (marked, DOMPurify) are the pinned ones, byte for byte."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "src" / "agentstream" / "web"


def test_vendored_copies_match_their_recorded_checksums() -> None:
    check = subprocess.run(
        [sys.executable, str(WEB / "vendor" / "vendor.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_the_page_imports_the_pinned_versions_from_the_package_only() -> None:
    pins = json.loads((WEB / "vendor" / "package.json").read_text())["dependencies"]
    assert re.fullmatch(r"18\.\d+\.\d+", pins["marked"]), pins  # exact pins, no ranges
    assert re.fullmatch(r"3\.\d+\.\d+", pins["dompurify"]), pins
    lock = json.loads((WEB / "vendor" / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/marked"]["version"] == pins["marked"]
    assert lock["node_modules/dompurify"]["version"] == pins["dompurify"]
    marked = (WEB / "static" / "vendor" / "marked.esm.js").read_text()
    assert f"marked v{pins['marked']}" in marked
    purify = (WEB / "static" / "vendor" / "purify.es.mjs").read_text()
    assert f"DOMPurify {pins['dompurify']}" in purify
    imports = re.findall(r'from "([^"]+)"', (WEB / "static" / "markdown.js").read_text())
    assert imports == ["./vendor/marked.esm.js", "./vendor/purify.es.mjs"]
