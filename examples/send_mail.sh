#!/bin/sh
# POST the example request to a running `cmsi-mail serve` with curl.
# The credentials (bk_app_code, bk_app_secret, bk_username) are in the body,
# as older BlueKing SDKs send them.
set -eu
url="${CMSI_MAIL_URL:-http://127.0.0.1:8025}/api/c/compapi/cmsi/send_mail/"
curl -sS -H 'Content-Type: application/json' \
  --data-binary @"$(dirname "$0")/send_mail.json" "$url"
echo
