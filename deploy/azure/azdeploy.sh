#!/usr/bin/env bash
# Deploy the voice assistant to Azure Container Apps (see deploy/README.md, "Azure").
#
#   deploy/azure/azdeploy.sh 1            # full deploy: infrastructure, image, migrations, app
#   deploy/azure/azdeploy.sh 2            # update image only: build, migrate, roll the app
#   deploy/azure/azdeploy.sh --help
#
# Needs: Azure CLI (`az login` done), openssl. No local Docker: images are built by ACR Tasks.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
IMAGE_REPOSITORY=voice-assistant

AZURE_ENV_NAME=${AZURE_ENV_NAME:-voice-assistant}
AZURE_LOCATION=${AZURE_LOCATION:-swedencentral}
IMAGE_TAG=${IMAGE_TAG:-}
STATE_DIR=${VOICE_DEPLOY_STATE_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/voice-assistant}

usage() {
    cat <<USAGE
Usage: ${0##*/} [OPTIONS] [1|2]

  1, --full        Full deploy: resource group, Log Analytics, managed identity, Container
                   Registry, AI Services (Voice Live) + realtime model, Redis, PostgreSQL,
                   Container Apps environment; build the image with ACR Tasks; run the
                   migrate job; create or update the web app. Safe to re-run.
  2, --image-only  Update image only: build a new image, run migrations, roll the web app.

Options:
  -e, --env NAME       environment name (default: \$AZURE_ENV_NAME or voice-assistant);
                       the resource group is rg-NAME
  -l, --location LOC   Azure region (default: \$AZURE_LOCATION or swedencentral)
  -t, --tag TAG        image tag (default: git short hash + UTC timestamp)
  -h, --help           show this help

Without 1 or 2 on a terminal, a menu asks. Generated secrets (Django key, PostgreSQL
password) are kept in $STATE_DIR/azure-<env>.env (mode 600) so re-runs keep them.
Clean-up: az group delete --name rg-<env> --yes   (then purge the soft-deleted AI account,
see deploy/README.md).
USAGE
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is required"
}

# Secrets generated once per environment and reused on every later full deploy.
load_secrets() {
    local file="$STATE_DIR/azure-$AZURE_ENV_NAME.env"
    mkdir -p "$STATE_DIR"
    if [[ ! -f $file ]]; then
        log "Generating secrets into $file"
        (
            umask 077
            printf 'DJANGO_SECRET_KEY=%s\nPOSTGRES_ADMIN_PASSWORD=%s\n' \
                "$(openssl rand -hex 32)" "$(openssl rand -hex 24)" >"$file"
        )
    fi
    DJANGO_SECRET_KEY=$(sed -n 's/^DJANGO_SECRET_KEY=//p' "$file")
    POSTGRES_ADMIN_PASSWORD=$(sed -n 's/^POSTGRES_ADMIN_PASSWORD=//p' "$file")
    [[ -n $DJANGO_SECRET_KEY && -n $POSTGRES_ADMIN_PASSWORD ]] || die "incomplete $file"
}

json_escape() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '%s' "$s"
}

# Render main.parameters.json (azd-style ${VAR} placeholders) into a private temporary file.
render_parameters() {
    local image=$1 out content name value
    out=$(mktemp)
    chmod 600 "$out"
    content=$(<"$SCRIPT_DIR/main.parameters.json")
    for name in AZURE_ENV_NAME AZURE_LOCATION AZURE_PRINCIPAL_ID SERVICE_WEB_IMAGE_NAME \
        DJANGO_SECRET_KEY POSTGRES_ADMIN_PASSWORD; do
        case $name in
            SERVICE_WEB_IMAGE_NAME) value=$image ;;
            *) value=${!name:-} ;;
        esac
        content=${content//"\${$name}"/$(json_escape "$value")}
    done
    printf '%s\n' "$content" >"$out"
    printf '%s' "$out"
}

deployment_name() { printf '%s-%s' "$AZURE_ENV_NAME" "$1"; }

# deploy STAGE IMAGE DEPLOY_WEB_APP
deploy() {
    local stage=$1 image=$2 web=$3 params
    params=$(render_parameters "$image")
    log "Deploying main.bicep ($stage) to $AZURE_LOCATION"
    if ! az deployment sub create \
        --name "$(deployment_name "$stage")" \
        --location "$AZURE_LOCATION" \
        --template-file "$SCRIPT_DIR/main.bicep" \
        --parameters "@$params" \
        --parameters deployWebApp="$web" \
        --output none; then
        rm -f "$params"
        die "deployment $stage failed (az deployment sub show -n $(deployment_name "$stage"))"
    fi
    rm -f "$params"
    LAST_DEPLOYMENT=$(deployment_name "$stage")
}

output() {
    az deployment sub show --name "$LAST_DEPLOYMENT" \
        --query "properties.outputs.$1.value" --output tsv
}

default_tag() {
    local rev
    rev=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
    printf '%s-%s' "$rev" "$(date -u +%Y%m%d%H%M%S)"
}

build_image() {
    local registry=$1 tag=$2
    log "Building $IMAGE_REPOSITORY:$tag with ACR Tasks in $registry (context: $REPO_ROOT)"
    az acr build \
        --registry "$registry" \
        --image "$IMAGE_REPOSITORY:$tag" \
        --file "$REPO_ROOT/deploy/Dockerfile" \
        --target web \
        "$REPO_ROOT"
}

run_migrations() {
    local rg=$1 job=$2 execution status waited=0
    log "Running migrations (job $job)"
    execution=$(az containerapp job start --name "$job" --resource-group "$rg" \
        --query name --output tsv)
    while :; do
        status=$(az containerapp job execution show --name "$job" --resource-group "$rg" \
            --job-execution-name "$execution" --query properties.status --output tsv)
        case $status in
            Succeeded) log "Migrations done"; return 0 ;;
            Failed | Stopped | Degraded)
                die "migrations $status: az containerapp job logs show -n $job -g $rg --execution $execution" ;;
        esac
        ((waited >= 900)) && die "migrations still $status after ${waited}s"
        sleep 10
        waited=$((waited + 10))
    done
}

full_deploy() {
    load_secrets
    AZURE_PRINCIPAL_ID=${AZURE_PRINCIPAL_ID:-$(az ad signed-in-user show --query id --output tsv 2>/dev/null || true)}
    export AZURE_PRINCIPAL_ID

    deploy infra "" false
    local rg registry login_server image tag
    rg=$(output AZURE_RESOURCE_GROUP)
    registry=$(output AZURE_CONTAINER_REGISTRY_NAME)
    login_server=$(output AZURE_CONTAINER_REGISTRY_ENDPOINT)
    tag=${IMAGE_TAG:-$(default_tag)}
    build_image "$registry" "$tag"
    image="$login_server/$IMAGE_REPOSITORY:$tag"

    deploy migrate "$image" false
    run_migrations "$rg" "$(output AZURE_MIGRATE_JOB_NAME)"

    deploy app "$image" true
    log "Deployed $image"
    log "Open $(output SERVICE_WEB_URI)"
    log "Voice Live endpoint: $(output AZURE_VOICELIVE_ENDPOINT) (Entra ID, managed identity $(output AZURE_MANAGED_IDENTITY_CLIENT_ID))"
    log "Create an admin: az containerapp exec -n $(output AZURE_CONTAINER_APP_NAME) -g $rg --command 'python manage.py createsuperuser'"
}

image_only() {
    LAST_DEPLOYMENT=$(deployment_name app)
    az deployment sub show --name "$LAST_DEPLOYMENT" --output none 2>/dev/null \
        || die "no deployment $LAST_DEPLOYMENT: run a full deploy (1) first"
    local rg registry login_server app job tag image
    rg=$(output AZURE_RESOURCE_GROUP)
    registry=$(output AZURE_CONTAINER_REGISTRY_NAME)
    login_server=$(output AZURE_CONTAINER_REGISTRY_ENDPOINT)
    app=$(output AZURE_CONTAINER_APP_NAME)
    job=$(output AZURE_MIGRATE_JOB_NAME)
    tag=${IMAGE_TAG:-$(default_tag)}
    build_image "$registry" "$tag"
    image="$login_server/$IMAGE_REPOSITORY:$tag"

    az containerapp job update --name "$job" --resource-group "$rg" --image "$image" --output none
    run_migrations "$rg" "$job"
    log "Rolling $app to $image (single revision mode: old replicas drain on SIGTERM)"
    az containerapp update --name "$app" --resource-group "$rg" --image "$image" --output none
    az containerapp revision list --name "$app" --resource-group "$rg" \
        --query "[].{revision:name, active:properties.active, replicas:properties.replicas, health:properties.healthState}" \
        --output table
}

main() {
    local mode=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            1 | --full) mode=full ;;
            2 | --image-only) mode=image ;;
            -e | --env) AZURE_ENV_NAME=${2:?--env needs a value}; shift ;;
            -l | --location) AZURE_LOCATION=${2:?--location needs a value}; shift ;;
            -t | --tag) IMAGE_TAG=${2:?--tag needs a value}; shift ;;
            -h | --help) usage; return 0 ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
        shift
    done
    if [[ -z $mode ]]; then
        [[ -t 0 ]] || { usage >&2; die "choose 1 (full deploy) or 2 (update image only)"; }
        printf '1) full deploy\n2) update image only\nChoice: ' >&2
        local choice
        read -r choice
        case $choice in
            1) mode=full ;;
            2) mode=image ;;
            *) die "no such option: $choice" ;;
        esac
    fi

    require az
    require openssl
    az account show --output none 2>/dev/null || die "run 'az login' first"
    export AZURE_ENV_NAME AZURE_LOCATION
    log "Subscription: $(az account show --query name --output tsv); environment: $AZURE_ENV_NAME"
    case $mode in
        full) full_deploy ;;
        image) image_only ;;
    esac
}

main "$@"
