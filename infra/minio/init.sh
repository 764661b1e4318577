#!/bin/sh
# One-shot `minio-init` (image quay.io/minio/mc): buckets `mlflow` and `dvc`, a policy limited to
# them, and the stack's non-root access key with that policy. Clients (MLflow, runs, DVC) use that
# key; the root credentials stay with MinIO and this script. Idempotent: safe on every `make up`.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_ACCESS_KEY_ID:?}" "${S3_SECRET_ACCESS_KEY:?}"
endpoint="${MINIO_INTERNAL_URL:-http://minio:9000}"
policy=energy-forecast-buckets

mc alias set stack "$endpoint" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
for bucket in mlflow dvc; do
  mc mb --ignore-existing "stack/$bucket"
done
mc admin policy create stack "$policy" /init/buckets-policy.json
mc admin user add stack "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
if ! out=$(mc admin policy attach stack "$policy" --user "$S3_ACCESS_KEY_ID" 2>&1); then
  case "$out" in
    *"already in effect"*|*"already attached"*) ;;
    *) echo "$out" >&2; exit 1 ;;
  esac
fi
echo "minio-init: buckets mlflow, dvc; access key ${S3_ACCESS_KEY_ID} limited to them"
