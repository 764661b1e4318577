#!/usr/bin/env bash
# Runs once, on the first start of an empty data directory (the official postgres image's
# /docker-entrypoint-initdb.d contract). Creates the `dagster`, `mlflow`, `forecasts` and `optuna` databases,
# each owned by its own login role with its own password, and the runs' login (DML only on the
# dagster database), from the environment (docker-compose.yml, .env). See databases.psql.
set -euo pipefail
for name in DAGSTER_PG_USER DAGSTER_PG_PASSWORD DAGSTER_PG_DB DAGSTER_RUN_PG_USER DAGSTER_RUN_PG_PASSWORD \
            MLFLOW_PG_USER MLFLOW_PG_PASSWORD MLFLOW_PG_DB FORECASTS_PG_USER FORECASTS_PG_PASSWORD FORECASTS_PG_DB \
            OPTUNA_PG_USER OPTUNA_PG_PASSWORD OPTUNA_PG_DB; do
  if [ -z "${!name:-}" ]; then
    echo "10-databases.sh: $name is not set; see .env.example" >&2
    exit 1
  fi
done
if [ "$DAGSTER_RUN_PG_USER" = "$DAGSTER_PG_USER" ]; then
  echo "10-databases.sh: DAGSTER_RUN_PG_USER must differ from DAGSTER_PG_USER (the owner); see .env.example" >&2
  exit 1
fi
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v dagster_user="$DAGSTER_PG_USER" -v dagster_password="$DAGSTER_PG_PASSWORD" -v dagster_db="$DAGSTER_PG_DB" \
  -v run_user="$DAGSTER_RUN_PG_USER" -v run_password="$DAGSTER_RUN_PG_PASSWORD" \
  -v mlflow_user="$MLFLOW_PG_USER" -v mlflow_password="$MLFLOW_PG_PASSWORD" -v mlflow_db="$MLFLOW_PG_DB" \
  -v forecasts_user="$FORECASTS_PG_USER" -v forecasts_password="$FORECASTS_PG_PASSWORD" -v forecasts_db="$FORECASTS_PG_DB" \
  -v optuna_user="$OPTUNA_PG_USER" -v optuna_password="$OPTUNA_PG_PASSWORD" -v optuna_db="$OPTUNA_PG_DB" \
  -f "$(dirname "${BASH_SOURCE[0]}")/databases.psql"
