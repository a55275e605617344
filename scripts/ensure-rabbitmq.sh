#!/usr/bin/env bash
# Make sure the RabbitMQ at RABBITMQ_URL answers AMQP and has the plugin waha-fleet needs.
#   --start   start a local broker (Debian's rabbitmq-server) when none answers (CI does this)
# Nothing here waits unbounded: each AMQP check gives up after BROKER_CHECK_TIMEOUT (default 5 s), a
# broker started here gets 60 s to answer, and rabbitmq-plugins PLUGINS_TIMEOUT (default 30 s).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
[ -x "$python" ] || make -s -C "$root" install  # the check below runs on the project's own aio-pika

url="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"; host="${hostport%%:*}"
local_broker() { [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ]; }
plugins_timeout="${PLUGINS_TIMEOUT:-30}"
plugin=rabbitmq_consistent_hash_exchange

# exit 0: usable; 1: not usable (the reason is printed); 2: nothing listens; 3: the plugin is missing
check() { RABBITMQ_URL="$url" "$python" -m fleet_devtools.broker_check "$@"; }

wait=0
down=0
[ "${1:-}" = "--start" ] && { check --quiet || down=$?; }
if [ "$down" = 2 ] && local_broker && command -v rabbitmq-server >/dev/null; then
  echo "RabbitMQ is down; starting it (rabbitmq-server -detached)"
  timeout 30 rabbitmq-server -detached || true  # it says itself why it could not start
  wait=60
fi

status=0
why="$(check --wait "$wait" 2>&1)" || status=$?
if [ "$status" = 3 ] && local_broker && command -v rabbitmq-plugins >/dev/null; then
  # The orchestrator's partitioning uses the consistent-hash exchange, which ships with RabbitMQ but
  # must be enabled. On a remote broker, enable it there (deploy/ does for compose and k8s).
  enabled=0
  timeout "$plugins_timeout" rabbitmq-plugins enable "$plugin" >/dev/null || enabled=$?
  if [ "$enabled" != 0 ]; then
    if [ "$enabled" = 124 ]; then what="did not answer within ${plugins_timeout} s"; else what="failed (exit $enabled)"; fi
    echo "rabbitmq-plugins enable $plugin $what: its CLI cannot reach the node or lacks the rights." >&2
    echo "Enable it yourself (sudo rabbitmq-plugins enable $plugin), then run make again." >&2
    exit 1
  fi
  echo "enabled the $plugin plugin"
  status=0
  why="$(check --wait 10 2>&1)" || status=$?
fi
[ "$status" = 0 ] || { echo "$why" >&2; exit 1; }  # the cause and the fix
