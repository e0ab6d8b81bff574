"""moto's SES (and everything else) on 127.0.0.1 for the tests.

Usage: moto_server.py PORT. Writes "READY" once /moto-api/data.json answers,
and exits when stdin closes.
"""

import logging
import sys
import time
import urllib.request

from moto.server import ThreadedMotoServer


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json") as reply:
                if reply.status == 200:
                    break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    print("READY", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
