#!/bin/sh
# Writes the Dagster instance ($DAGSTER_HOME/dagster.yaml) from the baked template with the run
# queue's limit from the environment, then runs the command (the webserver or the daemon).
#
# Why: the instance's `concurrency:` block (infra/dagster/dagster.yaml) takes plain integers, not
# Dagster's `{env: VAR}` sources, so DAGSTER_MAX_CONCURRENT_RUNS (.env) is written in here.
set -eu
runs="${DAGSTER_MAX_CONCURRENT_RUNS:-2}"
case "$runs" in
  ''|*[!0-9]*) [ "$runs" = "-1" ] || { echo "dagster: DAGSTER_MAX_CONCURRENT_RUNS must be a whole number (or -1: no limit), not '$runs'" >&2; exit 2; } ;;
esac
sed "s/^\(    max_concurrent_runs:\) [-0-9]*/\1 $runs/" /opt/dagster/dagster.yaml.template > "$DAGSTER_HOME/dagster.yaml"
grep -q "^    max_concurrent_runs: $runs\b" "$DAGSTER_HOME/dagster.yaml" || { echo "dagster: max_concurrent_runs not found in the template" >&2; exit 2; }
exec "$@"
