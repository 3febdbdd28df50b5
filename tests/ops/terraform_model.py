"""The Terraform configuration as python-hcl2 parses it, merged into one model for the ops tests."""

from __future__ import annotations

import re
from typing import Any

from tests.ops.validators import ROOT, parse_hcl

TERRAFORM = ROOT / "terraform"
# Blocks named by a type and a name (`resource "aws_instance" "host"`): merged per type across files.
_TYPED_BLOCKS = {"resource", "data", "ephemeral"}


def load() -> dict[str, Any]:
    """terraform/*.tf merged into {block kind: {type: {name: body}}} (other kinds: {name: body})."""
    merged: dict[str, Any] = {}
    for document in parse_hcl(TERRAFORM).values():
        for kind, blocks in document.items():
            for block in blocks:
                if kind in _TYPED_BLOCKS:
                    for type_, named in block.items():
                        merged.setdefault(kind, {}).setdefault(type_, {}).update(named)
                else:
                    merged.setdefault(kind, {}).update(block)
    return merged


def instance(hcl: dict[str, Any]) -> dict[str, Any]:
    """The one EC2 instance of the configuration."""
    (host,) = hcl["resource"]["aws_instance"].values()
    body: dict[str, Any] = host
    return body


def github_subject(hcl: dict[str, Any], role: str) -> str:
    """The GitHub OIDC subject (``repo:…``) the role ``aws_iam_role.<role>`` trusts.

    Roles share one trust document per subject (``github_assume``, keyed like
    ``locals.github_role_subjects``); this follows the role's reference to its key.
    """
    policy = hcl["resource"]["aws_iam_role"][role]["assume_role_policy"]
    (key,) = re.findall(r'aws_iam_policy_document\.github_assume\["(\w+)"\]', policy)
    (trust,) = hcl["data"]["aws_iam_policy_document"]["github_assume"]["statement"]
    (values,) = [c["values"] for c in trust["condition"] if c["variable"].endswith(":sub")]
    assert values == ["${each.value}"], "the trusted subject is the one keyed by the role"
    subjects = hcl["locals"]["github_role_subjects"]
    (subject,) = re.findall(rf'\{{\s*{key}\s*=\s*"([^"]+)"\s*\}}', subjects)
    return str(subject)
