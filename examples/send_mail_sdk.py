"""Send the example request through the official BlueKing SDK
(PyPI bkapi-component-open), which puts the credentials in the
X-Bkapi-Authorization header: an unmodified ESB client of `cmsi-mail serve`.

Run: python examples/send_mail_sdk.py   (CMSI_MAIL_URL overrides the address)
"""

import json
import os
import pathlib
import sys

from bkapi_component.open.client import Client

endpoint = os.environ.get("CMSI_MAIL_URL", "http://127.0.0.1:8025")
request = json.loads((pathlib.Path(__file__).parent / "send_mail.json").read_text(encoding="utf-8"))
credentials = {key: request.pop(key) for key in ("bk_app_code", "bk_app_secret", "bk_username")}

client = Client(endpoint=endpoint)
client.update_bkapi_authorization(**credentials)
result = client.cmsi.send_mail(request)
print(json.dumps(result, ensure_ascii=False))
sys.exit(0 if result.get("result") else 1)
