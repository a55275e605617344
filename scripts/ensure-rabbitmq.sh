#!/usr/bin/env bash
# Make sure the RabbitMQ at RABBITMQ_URL answers and has the plugins waha-fleet needs.
#   --start   start a local broker (Debian's rabbitmq-server) when none answers (CI does this)
set -euo pipefail

url="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=5672

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if ! answers; then
  if [ "${1:-}" = "--start" ] && command -v rabbitmq-server >/dev/null; then
    echo "RabbitMQ is down; starting it (rabbitmq-server -detached)"
    rabbitmq-server -detached
    for _ in $(seq 1 120); do answers && break; sleep 0.5; done
  fi
fi
if ! answers; then
  echo "RabbitMQ does not answer at $host:$port." >&2
  echo "Start one with 'rabbitmq-server -detached' (Debian package rabbitmq-server), or set RABBITMQ_URL." >&2
  exit 1
fi

# The orchestrator's partitioning uses the consistent-hash exchange, which ships with RabbitMQ
# but must be enabled. On a remote broker, enable it there (deploy/ does for compose and k8s).
if command -v rabbitmq-plugins >/dev/null && { [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ]; }; then
  if ! rabbitmq-plugins is_enabled rabbitmq_consistent_hash_exchange >/dev/null 2>&1; then
    rabbitmq-plugins enable rabbitmq_consistent_hash_exchange >/dev/null
    echo "enabled the rabbitmq_consistent_hash_exchange plugin"
  fi
fi
