"""docs/deploy.md tells an operator the release path, who approves, how to roll back and restore."""

from __future__ import annotations

import re

from tests.ops.validators import ROOT


def test_deploy_doc_has_the_release_path_approvals_rollback_and_restore() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    headings = set(re.findall(r"(?m)^#+ (.+)$", doc))
    assert {
        "Release path: from pull request to production",
        "Who approves",
        "Rollback",
        "Restore the database from a snapshot",
        "What survives the host",
    } <= headings
    path = doc.split("Release path: from pull request to production", 1)[1].split("\n#", 1)[0]
    assert len(re.findall(r"(?m)^\d+\. ", path)) >= 5, "the release path as a numbered list"
    restore = doc.split("Restore the database from a snapshot", 1)[1].split("\n## ", 1)[0]
    for command in ("aws ec2 create-volume", "terraform import", "--snapshot-id"):
        assert command in restore
