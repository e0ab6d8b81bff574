"""Second reader of our output: Python's email package with policy.default.

Reads one message from stdin and prints JSON: the decoded headers, the MIME
tree, every leaf's decoded content, and every defect the parser found
(including those that only appear once the content is decoded).
"""

import base64
import email
import json
import sys
from email import policy


def addresses(header):
    if header is None:
        return None
    return [
        {"name": a.display_name, "address": a.addr_spec} for a in header.addresses
    ]


def walk(part, defects, path):
    node = {
        "content_type": part.get_content_type(),
        "params": dict(part.get_params() or [])
        if part.get_params()
        else {},
    }
    node["params"].pop(part.get_content_type(), None)
    for defect in part.defects:
        defects.append(f"{path}: {type(defect).__name__}: {defect}")
    if part.is_multipart():
        node["parts"] = [
            walk(child, defects, f"{path}.{index}")
            for index, child in enumerate(part.iter_parts())
        ]
        return node
    node["filename"] = part.get_filename()
    node["disposition"] = part.get_content_disposition()
    node["content_id"] = part.get("Content-ID")
    node["transfer_encoding"] = part.get("Content-Transfer-Encoding")
    content = part.get_content()
    for defect in part.defects:
        message = f"{path}: {type(defect).__name__}: {defect}"
        if message not in defects:
            defects.append(message)
    if isinstance(content, str):
        node["text"] = content
    else:
        node["base64"] = base64.b64encode(content).decode("ascii")
    return node


def main():
    raw = sys.stdin.buffer.read()
    message = email.message_from_bytes(raw, policy=policy.default)
    defects = []
    tree = walk(message, defects, "root")
    print(
        json.dumps(
            {
                "subject": message["Subject"],
                "from": addresses(message["From"]),
                "to": addresses(message["To"]),
                "cc": addresses(message["Cc"]),
                "date": message["Date"],
                "message_id": message["Message-ID"],
                "mime_version": message["MIME-Version"],
                "bcc": message["Bcc"],
                "tree": tree,
                "defects": defects,
            }
        )
    )


if __name__ == "__main__":
    main()
