"""POST the example request to a running `cmsi-mail serve` with `requests`.

The credentials are in the body, as older BlueKing SDKs send them.
Run: python examples/send_mail.py   (CMSI_MAIL_URL overrides the address)
"""

import json
import os
import pathlib
import sys

import requests

url = os.environ.get("CMSI_MAIL_URL", "http://127.0.0.1:8025") + "/api/c/compapi/cmsi/send_mail/"
body = json.loads((pathlib.Path(__file__).parent / "send_mail.json").read_text(encoding="utf-8"))
reply = requests.post(url, json=body, timeout=60)
print(json.dumps(reply.json(), ensure_ascii=False))
sys.exit(0 if reply.json().get("result") else 1)
