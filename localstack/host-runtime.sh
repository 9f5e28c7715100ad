#!/usr/bin/env bash
# LocalStack's Python runtime without Docker, on loopback.
#
#   localstack/host-runtime.sh install        # a Python 3.13 venv in .cache/localstack
#   localstack/host-runtime.sh start PORT     # prints "ready" once healthy; logs in .cache/
#
# LocalStack needs Python 3.13 and these pins to run on the host. Its DynamoDB
# downloads a Java runtime and DynamoDB Local on first use; where that cannot be
# reached, keep the records elsewhere (BROKER_DYNAMODB_ENDPOINT_URL).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.cache/localstack/venv"
pins=("localstack-core[runtime]" "cbor2<6" "pyopenssl<26" "cryptography<47" "service_identity")

python313() {
  if command -v python3.13 >/dev/null && python3.13 -c "" 2>/dev/null; then
    command -v python3.13
  elif command -v pyenv >/dev/null && version=$(pyenv versions --bare | grep '^3\.13' | tail -1) \
      && [ -n "$version" ]; then
    echo "$(pyenv prefix "$version")/bin/python3.13"
  else
    return 1
  fi
}

case "${1:?usage: host-runtime.sh install | start PORT}" in
  install)
    [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import localstack.runtime.main" 2>/dev/null && exit 0
    py=$(python313) || { echo "LocalStack needs Python 3.13 (pyenv install 3.13)" >&2; exit 3; }
    "$py" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" 2>&1 \
      | { grep -v "^WARNING: Location" || true; }
    ;;
  start)
    port=${2:?a port}
    mkdir -p "$root/.cache/localstack"
    OVERRIDE_IN_DOCKER=0 GATEWAY_LISTEN="127.0.0.1:$port" SERVICES=s3,sqs,dynamodb \
      SQS_ENDPOINT_STRATEGY=path \
      LOCALSTACK_VOLUME_DIR="$root/.cache/localstack/volume" \
      nohup "$venv/bin/python" -m localstack.runtime.main \
      </dev/null >"$root/.cache/localstack/runtime-$port.log" 2>&1 &
    echo $! > "$root/.cache/localstack/runtime-$port.pid"
    for _ in $(seq 120); do
      curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/_localstack/health" && { echo ready; exit 0; }
      sleep 0.5
    done
    echo "LocalStack did not become healthy; see .cache/localstack/runtime-$port.log" >&2
    exit 1
    ;;
  stop)
    port=${2:?a port}
    pidfile="$root/.cache/localstack/runtime-$port.pid"
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    ;;
esac
