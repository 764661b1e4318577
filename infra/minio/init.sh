#!/bin/sh
# One-shot `minio-init` (image quay.io/minio/mc): the buckets `mlflow`, `dvc` and `ops`, and one access key
# per role, each limited by its own policy (policies/<role>.json, AWS IAM syntax):
#
#   role      key (.env)                  may
#   mlflow    MLFLOW_S3_ACCESS_KEY_ID     read, write and delete in `mlflow` (the tracking server)
#   dvc       DVC_S3_ACCESS_KEY_ID        read, write and delete in `dvc` (DVC on the host)
#   serving   SERVING_S3_ACCESS_KEY_ID    read `mlflow` only (the `serving` service reads models)
#   ops       OPS_S3_ACCESS_KEY_ID        read, write and delete in `ops` (code server and runs: the
#                                         landing/ prefix, forecast plots/, Dagster's IO manager)
#
# Runs and the code server hold only the ops key: they reach MLflow artifacts through MLflow's
# proxied artifact API, never with a key to the `mlflow` bucket.
# The root credentials stay with MinIO and this script. Idempotent: safe on every `make up`.
# The test stand-in (tests/system/images/s3) creates the same users from the same policy files.
#
# `s3:HeadBucket` in the policies is for S3 servers that check it as an action of its own (moto);
# MinIO accepts it and checks HEAD bucket against `s3:ListBucket`, which the policies grant as well.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${MLFLOW_S3_ACCESS_KEY_ID:?}" "${MLFLOW_S3_SECRET_ACCESS_KEY:?}"
: "${DVC_S3_ACCESS_KEY_ID:?}" "${DVC_S3_SECRET_ACCESS_KEY:?}"
: "${SERVING_S3_ACCESS_KEY_ID:?}" "${SERVING_S3_SECRET_ACCESS_KEY:?}"
: "${OPS_S3_ACCESS_KEY_ID:?}" "${OPS_S3_SECRET_ACCESS_KEY:?}"
endpoint="${MINIO_INTERNAL_URL:-http://minio:9000}"

# One key per role: a key shared by two roles would hold both policies.
distinct=$(printf '%s\n' "$MLFLOW_S3_ACCESS_KEY_ID" "$DVC_S3_ACCESS_KEY_ID" "$SERVING_S3_ACCESS_KEY_ID" "$OPS_S3_ACCESS_KEY_ID" | sort -u | wc -l)
if [ "$distinct" -ne 4 ]; then
  echo "minio-init: MLFLOW_S3_ACCESS_KEY_ID, DVC_S3_ACCESS_KEY_ID, SERVING_S3_ACCESS_KEY_ID and OPS_S3_ACCESS_KEY_ID in .env must differ" >&2
  exit 1
fi

mc alias set stack "$endpoint" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
for bucket in mlflow dvc ops; do
  mc mb --ignore-existing "stack/$bucket"
done

grant() {  # role access-key secret
  policy="energy-forecast-$1"
  mc admin policy create stack "$policy" "/init/policies/$1.json"
  mc admin user add stack "$2" "$3"
  if ! out=$(mc admin policy attach stack "$policy" --user "$2" 2>&1); then
    case "$out" in
      *"already in effect"*|*"already attached"*) ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
  echo "minio-init: key $2 -> policy $policy (/init/policies/$1.json)"
}
grant mlflow "$MLFLOW_S3_ACCESS_KEY_ID" "$MLFLOW_S3_SECRET_ACCESS_KEY"
grant dvc "$DVC_S3_ACCESS_KEY_ID" "$DVC_S3_SECRET_ACCESS_KEY"
grant serving "$SERVING_S3_ACCESS_KEY_ID" "$SERVING_S3_SECRET_ACCESS_KEY"
grant ops "$OPS_S3_ACCESS_KEY_ID" "$OPS_S3_SECRET_ACCESS_KEY"
