"""Every relative link and anchor in the repository's Markdown files points at something that exists.

The README was split into docs/*.md and CHANGELOG.md; Grafana alert rules link runbook anchors.
A moved section or a renamed heading silently breaks those links; this test names each one.
Anchors follow GitHub's rule (lower case, punctuation dropped, spaces to hyphens, ``-1``, ``-2``
for repeats) plus explicit ``<a id="…">`` tags.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path

import yaml

from tests.harness import ROOT

README_MAX_BYTES = 15 * 1024
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^()\s]+(?:\([^()\s]*\))?[^()\s]*)(?:\s+\"[^\"]*\")?\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^()\s]+)\)")
_HTML_ID = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
_INLINE_CODE = re.compile(r"`[^`]*`")


def markdown_files() -> list[Path]:
    """The Markdown files git tracks or would track (untracked but not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return sorted(ROOT / line for line in out.splitlines() if (ROOT / line).is_file())


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links and headings in code are examples, not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor a Markdown file defines: heading slugs (with GitHub's -N suffixes) and <a id>."""
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        found.update(_HTML_ID.findall(line))
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
            seen[base] += 1
    return frozenset(found)


def broken_link(source: Path, target: str) -> str | None:
    """Why a link from a Markdown file is broken, or None when it resolves."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
        return None  # http(s), mailto: not checked offline
    path_part, _, anchor = target.partition("#")
    resolved = (source.parent / path_part).resolve() if path_part else source
    if not resolved.exists():
        return f"{target}: no file {resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved}"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{target}: no anchor #{anchor} in {resolved.relative_to(ROOT)}"
    return None


def test_every_relative_link_and_anchor_in_markdown_resolves() -> None:
    files = markdown_files()
    assert ROOT / "README.md" in files and len(files) > 5
    broken = []
    for path in files:
        for number, line in enumerate(_prose_lines(path.read_text(encoding="utf-8")), 1):
            prose = _INLINE_CODE.sub("", line)
            for target in [*_LINK.findall(prose), *_IMAGE.findall(prose)]:
                reason = broken_link(path, target)
                if reason:
                    broken.append(f"{path.relative_to(ROOT)} (prose line {number}): {reason}")
    assert not broken, "\n".join(broken)


def test_grafana_runbook_urls_resolve() -> None:
    """Each alert rule's runbook_url (relative to the repository root) names an existing anchor."""
    rules = yaml.safe_load((ROOT / "ops/grafana/provisioning/alerting/rules.yml").read_text())
    urls = [
        rule["annotations"]["runbook_url"]
        for group in rules["groups"]
        for rule in group["rules"]
    ]  # fmt: skip
    assert urls
    broken = [u for u in urls if broken_link(ROOT / "README.md", u)]
    assert not broken, broken


def test_slug_follows_github() -> None:
    assert slug("Sessions (`rtep.sessions`)") == "sessions-rtepsessions"
    assert slug("Runbook: DLQ ratio above 5%") == "runbook-dlq-ratio-above-5"
    assert slug("Scale-out curve: `make bench-scale`") == "scale-out-curve-make-bench-scale"
    assert slug("Time, watermark and lateness") == "time-watermark-and-lateness"


def test_readme_fits_on_a_few_screens_and_has_a_table_of_contents() -> None:
    readme = ROOT / "README.md"
    size = len(readme.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes (> {README_MAX_BYTES}): move detail to docs/"
    )
    text = readme.read_text(encoding="utf-8")
    assert "## Contents" in text
    toc = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    linked = set(re.findall(r"\]\(#([^)]+)\)", toc))
    sections = {slug(h) for h in re.findall(r"(?m)^## (.+)$", text)} - {"contents"}
    assert sections - {"changelog"} <= linked, sections - linked


def test_no_markdown_links_a_file_outside_the_tree() -> None:
    """The changelog once named a CONTRACT.md that is not in the repository."""
    for path in markdown_files():
        assert "CONTRACT.md" not in path.read_text(encoding="utf-8"), path
