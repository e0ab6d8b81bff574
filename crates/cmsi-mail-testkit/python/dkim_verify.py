"""An independent DKIM verifier for the tests: dkimpy, with its DNS lookup
replaced by a function that returns the test key's TXT record.

Usage: dkim_verify.py RECORD < message
Prints JSON: {"ok": true|false, "signatures": N, "error": "..."}
"""

import json
import sys

import dkim


def main():
    record = sys.argv[1].encode("ascii")
    message = sys.stdin.buffer.read()

    def dnsfunc(name, timeout=5):
        return record

    result = {"ok": False, "signatures": 0, "error": None}
    try:
        verifier = dkim.DKIM(message)
        result["signatures"] = len(
            [h for h in verifier.headers if h[0].lower() == b"dkim-signature"]
        )
        result["ok"] = bool(verifier.verify(dnsfunc=dnsfunc))
    except dkim.DKIMException as error:
        result["error"] = str(error)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
