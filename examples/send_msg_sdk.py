"""Notify as bk-itsm and bk-sops do, through the official BlueKing SDK
(PyPI bkapi-component-open): ask `get_msg_type` which channels are active,
then `send_msg` the message on each. Credentials go in the
X-Bkapi-Authorization header.

Run: python examples/send_msg_sdk.py   (CMSI_MAIL_URL overrides the address)
"""

import json
import os
import sys

from bkapi_component.open.client import Client

endpoint = os.environ.get("CMSI_MAIL_URL", "http://127.0.0.1:8025")
client = Client(endpoint=endpoint, bk_api_ver="v2")
client.update_bkapi_authorization(bk_app_code="monitor", bk_app_secret="s3cret", bk_username="admin")

types = client.cmsi.get_msg_type(headers={"Blueking-Language": "zh-cn"})
active = [item["type"] for item in types["data"] if item["is_active"]]
sent = {}
for msg_type in active:
    sent[msg_type] = client.cmsi.send_msg({
        "msg_type": msg_type,
        "receiver__username": "admin,zhangsan",
        "title": "【告警】磁盘使用率 91%",
        "content": "<p>主机 <b>web-01</b> 的 <code>/data</code> 分区使用率已达 91%。</p>",
    })
print(json.dumps({"types": types, "sent": sent}, ensure_ascii=False))
sys.exit(0 if active and all(result.get("result") for result in sent.values()) else 1)
