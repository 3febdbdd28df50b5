#!/usr/bin/env bash
# Write the compose project (/opt/rtep) from SSM Parameter Store, then pull the images.
# Run by rtep.service before every start, and by the deploy workflow (through SSM Run Command).
set -euo pipefail

# shellcheck source=/dev/null
source /etc/rtep/rtep.conf # RTEP_SSM_PREFIX, AWS_REGION, RTEP_REGISTRY_TOKEN_PARAMETER, RTEP_POSTGRES_DATA
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
