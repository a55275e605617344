#!/bin/sh
# minio-init (compose): the media bucket, and the services' own MinIO user, allowed that bucket only.
# Runs with MinIO's root credentials once MinIO is healthy, on every `docker compose up`; each step
# leaves what exists as it is (a changed S3_SECRET_ACCESS_KEY is set again). Only sh and mc: the
# minio/mc image has no other tools.
#
#   MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD   the server and its root user
#   S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY   what the gateway and the orchestrator use
set -eu

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${S3_BUCKET:?}" "${S3_ACCESS_KEY_ID:?}" "${S3_SECRET_ACCESS_KEY:?}"

policy=/tmp/waha-fleet-media-policy.json
# ListBucket too: without it S3 answers 403 instead of 404 for a key not stored yet, and the media
# store could not tell "not copied yet" from "refused".
printf '%s\n' "{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {\"Effect\": \"Allow\", \"Action\": [\"s3:ListBucket\"], \"Resource\": [\"arn:aws:s3:::$S3_BUCKET\"]},
    {\"Effect\": \"Allow\", \"Action\": [\"s3:GetObject\", \"s3:PutObject\", \"s3:DeleteObject\"],
     \"Resource\": [\"arn:aws:s3:::$S3_BUCKET/*\"]}
  ]
}" > "$policy"

mc alias set fleet "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "fleet/$S3_BUCKET"
mc admin policy create fleet waha-fleet-media "$policy"
mc admin user add fleet "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
# Attaching a policy attached already succeeds (mc since late 2024).
mc admin policy attach fleet waha-fleet-media --user "$S3_ACCESS_KEY_ID"
echo "bucket $S3_BUCKET ready for $S3_ACCESS_KEY_ID"
