#!/usr/bin/env bash
# Runs once, on the first start of an empty data directory (the official postgres image's
# /docker-entrypoint-initdb.d contract). Creates the `dagster` and `mlflow` databases, each owned by
# its own login role with its own password, from the environment (docker-compose.yml, .env).
set -euo pipefail
for name in DAGSTER_PG_USER DAGSTER_PG_PASSWORD DAGSTER_PG_DB MLFLOW_PG_USER MLFLOW_PG_PASSWORD MLFLOW_PG_DB; do
  if [ -z "${!name:-}" ]; then
    echo "10-databases.sh: $name is not set; see .env.example" >&2
    exit 1
  fi
done
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v dagster_user="$DAGSTER_PG_USER" -v dagster_password="$DAGSTER_PG_PASSWORD" -v dagster_db="$DAGSTER_PG_DB" \
  -v mlflow_user="$MLFLOW_PG_USER" -v mlflow_password="$MLFLOW_PG_PASSWORD" -v mlflow_db="$MLFLOW_PG_DB" \
  -f "$(dirname "${BASH_SOURCE[0]}")/databases.psql"
