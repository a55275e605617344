#!/bin/sh
# Renders the RabbitMQ definitions template: every ${NAME} placeholder (a user's password) is
# replaced by the environment variable NAME. Refuses unset, short or URL-unsafe values, since each
# password also appears in a service's AMQP URL.
#   usage: render-definitions.sh TEMPLATE OUTPUT
# compose runs it in the RabbitMQ container before the server starts (see compose.yaml); for a
# RabbitMQ you run yourself, render once and import: rabbitmqctl import_definitions OUTPUT
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 TEMPLATE OUTPUT" >&2
  exit 2
fi
template=$1
output=$2
min_length=16

names=$(grep -o '\${[A-Z][A-Z0-9_]*}' "$template" | tr -d '${}' | sort -u)
script=
for name in $names; do
  eval "value=\${$name-}"
  if [ -z "$value" ]; then
    echo "render-definitions: $name is not set (see .env.example)" >&2
    exit 1
  fi
  case $value in
    *[!A-Za-z0-9._~-]*)
      echo "render-definitions: $name may hold only A-Z a-z 0-9 . _ ~ - (it is part of an AMQP URL); try: openssl rand -hex 24" >&2
      exit 1
      ;;
  esac
  if [ "${#value}" -lt "$min_length" ]; then
    echo "render-definitions: $name is shorter than $min_length characters" >&2
    exit 1
  fi
  script="${script}s|[\$]{$name}|$value|g;"
done

umask 077
sed "$script" "$template" > "$output.tmp"
mv "$output.tmp" "$output"
