#!/usr/bin/env bash
# Write the compose project (/opt/rtep) from SSM Parameter Store, then pull the images.
# Run by rtep.service before every start, and by the deploy workflow (through SSM Run Command).
set -euo pipefail

# RTEP_SSM_PREFIX, AWS_REGION, RTEP_REGISTRY_TOKEN_PARAMETER, RTEP_POSTGRES_DATA, RTEP_IMAGE_REPOSITORY
# (RTEP_CONF and RTEP_DIR move the two paths, for tests/ops).
# shellcheck source=/dev/null
source "${RTEP_CONF:-/etc/rtep/rtep.conf}"
export AWS_REGION
dir="${RTEP_DIR:-/opt/rtep}"
prefix="${RTEP_SSM_PREFIX}"

parameter() {
    aws ssm get-parameter --with-decryption --name "$1" --query Parameter.Value --output text
}

install -d -m 0755 "$dir"
aws ssm get-parameters-by-path --path "$prefix/config/" --recursive \
    --query 'Parameters[].[Name,Value]' --output text |
    while IFS=$'\t' read -r name value; do
        rel="${name#"$prefix/config/"}"
        install -d -m 0755 "$dir/$(dirname "$rel")"
        printf '%s' "$value" | base64 -d | gunzip > "$dir/$rel"
    done

# Run only an image of this repository's registry path (RTEP_IMAGE_REPOSITORY, when Terraform knows
# the repository), with a tag or a digest: whoever can write $prefix/image cannot point the host at
# another registry, nor slip a second line into .env.
image="$(parameter "$prefix/image")"
repository="${RTEP_IMAGE_REPOSITORY:-}"
repository_pattern="${repository//./\\.}"
if [[ ! "$image" =~ ^${repository_pattern:-[a-z0-9./_-]+}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[0-9a-f]{64})$ ]]; then
    echo "rtep-sync: refusing image '$image' from $prefix/image: it must be ${repository:-registry/name}:<tag> or @sha256:<digest> (deploy with .github/workflows/deploy.yml)" >&2
    exit 1
fi

umask 077
{
    parameter "$prefix/env"
    echo "RTEP_IMAGE=$image"
    # PostgreSQL's data directory on its own EBS volume (mounted by rtep-data-volume).
    echo "POSTGRES_DATA=${RTEP_POSTGRES_DATA}"
    # Optional, created by hand (docs/deploy.md): where Grafana sends alert notifications.
    webhook="$(aws ssm get-parameters --with-decryption --names "$prefix/alert-webhook-url" \
        --query 'Parameters[0].Value' --output text)"
    if [[ -n "$webhook" && "$webhook" != None ]]; then
        echo "RTEP_ALERT_WEBHOOK_URL=$webhook"
    fi
} > "$dir/.env.tmp"
mv "$dir/.env.tmp" "$dir/.env"

if [[ -n "${RTEP_REGISTRY_TOKEN_PARAMETER:-}" ]]; then
    parameter "$RTEP_REGISTRY_TOKEN_PARAMETER" |
        docker login ghcr.io --username rtep --password-stdin > /dev/null
fi

# Pulls rtep too (RTEP_IMAGE); `up --no-build` in rtep.service then fails if that image is missing.
docker compose --project-directory "$dir" -f "$dir/compose.yaml" pull --quiet
