"""A tiny OAuth2 token endpoint for the tests: the client-credentials grant
(RFC 6749 section 4.4) on http://127.0.0.1:PORT/token.

Usage: oauth_server.py --port P --state DIR --client-id ID --client-secret S
                       [--scope SCOPE] [--expires-in SECONDS]

Each accepted request issues "token-N" (N counts from 1), writes it to
DIR/token (the SMTP test server accepts what that file holds) and appends a
line to DIR/requests; refused requests are logged there too, never with the
secret. Writes "READY" once listening and exits when stdin closes.
"""

import argparse
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--scope")
    parser.add_argument("--expires-in", type=int, default=3600)
    args = parser.parse_args()
    lock = threading.Lock()
    issued = {"count": 0}

    def log(entry):
        with open(os.path.join(args.state, "requests"), "a") as out:
            out.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            field = lambda name: (form.get(name) or [None])[0]
            with lock:
                if self.path != "/token" or field("grant_type") != "client_credentials":
                    log({"ok": False, "why": "grant"})
                    return self.answer(400, {"error": "unsupported_grant_type"})
                if (
                    field("client_id") != args.client_id
                    or field("client_secret") != args.client_secret
                ):
                    log({"ok": False, "why": "client"})
                    return self.answer(401, {"error": "invalid_client",
                                             "error_description": "unknown client or wrong secret"})
                if args.scope is not None and field("scope") != args.scope:
                    log({"ok": False, "why": "scope"})
                    return self.answer(400, {"error": "invalid_scope"})
                issued["count"] += 1
                token = "token-%d" % issued["count"]
                with open(os.path.join(args.state, "token.part"), "w") as out:
                    out.write(token)
                os.replace(os.path.join(args.state, "token.part"),
                           os.path.join(args.state, "token"))
                log({"ok": True, "token": token})
            self.answer(200, {"access_token": token, "token_type": "Bearer",
                              "expires_in": args.expires_in})

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
