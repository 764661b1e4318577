#!/bin/sh
# Renders the proxy's runtime files into /run/proxy from the environment, then runs nginx
# (nginx.conf beside this script explains the rules). Nothing secret is baked into the image:
#
#   PROXY_USER, PROXY_PASSWORD   the login (.env); stored here only as a SHA-512 crypt hash
#   DAGSTER_PORT, MLFLOW_PORT    the host ports the UIs are published on (default 3000, 5000)
#   DAGSTER_ALLOWED_ORIGINS      origins allowed to change state, comma- or space-separated
#   MLFLOW_ALLOWED_ORIGINS       (default http://127.0.0.1:<port> and http://localhost:<port>)
#   DAGSTER_UPSTREAM, MLFLOW_UPSTREAM   default http://dagster-webserver:3000, http://mlflow:5000
#   PROXY_RESOLVER               DNS server for the upstream names (default Docker's 127.0.0.11)
set -eu

fail() {
  echo "proxy: $*" >&2
  exit 2
}

user="${PROXY_USER:-}"
password="${PROXY_PASSWORD:-}"
[ -n "$user" ] || fail "PROXY_USER is empty: set it in .env (see .env.example; 'make up' generates it)"
[ -n "$password" ] || fail "PROXY_PASSWORD is empty: set it in .env (see .env.example; 'make up' generates it)"
case "$user" in
  *:* | *[[:space:]]*) fail "PROXY_USER must not contain ':' or spaces" ;;
esac

dagster_port="${DAGSTER_PORT:-3000}"
mlflow_port="${MLFLOW_PORT:-5000}"
dagster_origins="${DAGSTER_ALLOWED_ORIGINS:-http://127.0.0.1:$dagster_port,http://localhost:$dagster_port}"
mlflow_origins="${MLFLOW_ALLOWED_ORIGINS:-http://127.0.0.1:$mlflow_port,http://localhost:$mlflow_port}"
dagster_upstream="${DAGSTER_UPSTREAM:-http://dagster-webserver:3000}"
mlflow_upstream="${MLFLOW_UPSTREAM:-http://mlflow:5000}"
resolver="${PROXY_RESOLVER:-127.0.0.11}"

run=/run/proxy
mkdir -p "$run/tmp"
umask 077

# Values go into nginx's configuration: admit only plain origins and names.
for pair in "DAGSTER_UPSTREAM=$dagster_upstream" "MLFLOW_UPSTREAM=$mlflow_upstream"; do
  printf '%s\n' "${pair#*=}" | grep -Eqx 'http://[A-Za-z0-9.-]+(:[0-9]+)?' \
    || fail "${pair%%=*}='${pair#*=}' is not an upstream such as http://name:port"
done
printf '%s\n' "$resolver" | grep -Eqx '[A-Za-z0-9.:-]+' || fail "PROXY_RESOLVER='$resolver' is not an address"

# map entries: allowed origins, and the Host headers they imply
origin_maps() {  # variable-name origins
  name="$1"
  list=$(printf '%s' "$2" | tr ', ' '\n\n' | sed '/^$/d')
  [ -n "$list" ] || fail "$name is empty: give at least one origin such as http://127.0.0.1:3000"
  ui=$(printf '%s' "$name" | cut -d_ -f1 | tr 'A-Z' 'a-z')
  printf 'map $http_origin $%s_origin_ok {\n    default 0;\n    "" 1;\n' "$ui"
  for origin in $list; do
    printf '%s\n' "$origin" | grep -Eqx 'https?://[A-Za-z0-9.-]+(:[0-9]+)?' \
      || fail "$name: '$origin' is not an origin such as http://127.0.0.1:3000 (scheme://host[:port], no path)"
    printf '    "%s" 1;\n' "$origin"
  done
  printf '}\nmap $http_host $%s_host_ok {\n    default 0;\n' "$ui"
  for origin in $list; do
    printf '    "%s" 1;\n' "${origin#*://}"
  done
  printf '}\n'
}

{
  printf 'resolver %s valid=10s ipv6=off;\n' "$resolver"
  printf 'map $scheme $dagster_upstream {\n    default "%s";\n}\n' "$dagster_upstream"
  printf 'map $scheme $mlflow_upstream {\n    default "%s";\n}\n' "$mlflow_upstream"
  origin_maps DAGSTER_ALLOWED_ORIGINS "$dagster_origins"
  origin_maps MLFLOW_ALLOWED_ORIGINS "$mlflow_origins"
} >"$run/generated.conf"

hash=$(printf '%s' "$password" | openssl passwd -6 -stdin)
printf '%s:%s\n' "$user" "$hash" >"$run/htpasswd"

nginx -t -q -c /etc/proxy/nginx.conf
echo "proxy: Dagster origins: $(printf '%s' "$dagster_origins" | tr ',' ' '); MLflow origins: $(printf '%s' "$mlflow_origins" | tr ',' ' ')"
exec nginx -c /etc/proxy/nginx.conf
