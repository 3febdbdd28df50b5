"""The image installs Python dependencies only from requirements.txt: every one pinned, every file
checked against its hash, the lock kept current by Dependabot."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.ops.validators import ROOT


def _locked() -> dict[str, tuple[str, int]]:
    """requirements.txt as {name: (pinned version, number of hashes)}."""
    text = (ROOT / "requirements.txt").read_text().replace("\\\n", " ")
    locked = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *options = line.split(" --hash=")
        requirement = Requirement(spec.strip())
        (pin,) = requirement.specifier
        assert pin.operator == "==", f"{requirement.name}: pin with =="
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}\s*", o) for o in options), line
        locked[requirement.name.lower()] = (pin.version, len(options))
    return locked


def test_lock_pins_every_dependency_with_hashes() -> None:
    locked = _locked()
    assert all(hashes >= 1 for _, hashes in locked.values())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]
    for spec in map(Requirement, wanted):
        name = spec.name.lower()
        assert name in locked, f"{name} missing from requirements.txt: pip-compile again"
        assert locked[name][0] in spec.specifier, f"{name}: lock and pyproject.toml disagree"
    header = (ROOT / "requirements.txt").read_text()
    assert "pip-compile --all-build-deps --allow-unsafe --generate-hashes" in header


def test_image_installs_only_from_the_lock() -> None:
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    build = dockerfile.split("AS build", 1)[1].split("AS runtime", 1)[0]
    installs = re.findall(r"(?m)^RUN (.*pip install.*)$", build)
    assert installs == [
        "pip install --no-cache-dir --require-hashes --no-deps -r requirements.txt",
        "pip install --no-cache-dir --no-deps --no-build-isolation --no-index .",
    ]
    # The lock is installed before the source is copied (a code change reuses that layer).
    assert build.index("COPY requirements.txt ./") < build.index("COPY rtep/ rtep/")
    assert "!requirements.txt" in (ROOT / ".dockerignore").read_text().splitlines()
