#!/usr/bin/env bash
# Write the compose project (/opt/rtep) from SSM Parameter Store, then pull the images.
# Run by rtep.service before every start, and by the deploy workflow (through SSM Run Command).
set -euo pipefail

# shellcheck source=/dev/null
source /etc/rtep/rtep.conf # RTEP_SSM_PREFIX, AWS_REGION, RTEP_REGISTRY_TOKEN_PARAMETER
export AWS_REGION
dir=/opt/rtep
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

umask 077
{
    parameter "$prefix/env"
    echo "RTEP_IMAGE=$(parameter "$prefix/image")"
} > "$dir/.env.tmp"
mv "$dir/.env.tmp" "$dir/.env"

if [[ -n "${RTEP_REGISTRY_TOKEN_PARAMETER:-}" ]]; then
    parameter "$RTEP_REGISTRY_TOKEN_PARAMETER" |
        docker login ghcr.io --username rtep --password-stdin > /dev/null
fi

# Pulls rtep too (RTEP_IMAGE); `up --no-build` in rtep.service then fails if that image is missing.
docker compose --project-directory "$dir" -f "$dir/compose.yaml" pull --quiet
