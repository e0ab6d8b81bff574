"""A real SMTP server for the tests: aiosmtpd with STARTTLS (or implicit TLS),
AUTH required after TLS, and a handler that stores every accepted message.

Usage: smtp_server.py --port P --store DIR --cert C --key K [--tls starttls|implicit|none]
                      [--user U --password W] [--idle-timeout S]
                      [--xoauth2-token-file F]

With --xoauth2-token-file, AUTH XOAUTH2 is offered (and required) and accepts
the bearer token that file holds at the time of each AUTH; without it, the
server does not offer XOAUTH2.

Writes "READY" on stdout once listening, and exits when stdin closes (so a test
process that dies never leaves a server behind).

The store directory gets, for each accepted message, N.eml (the bytes as
received) and N.json (envelope, login, TLS); events.jsonl records sessions
and DATA attempts.

Some recipients make the server misbehave, for the fault tests:
  reject-*@   RCPT answered 550
  busy-*@     RCPT answered 450
  busy-once-*@       the first RCPT for each address answered 450, then accepted
  tempfail-once-*@   the first DATA for each Message-ID answered 451, then accepted
  permfail-*@        DATA answered 554
  drop-data-once-*@  the first DATA on this server: connection reset right after 354
  drop-after-dot-*@  DATA read in full, then the connection reset without a reply
  slow-*@            DATA answered after 1.5 s
  stall-*@           RCPT answered after 2 s (logged as a "stall" event when it starts),
                     so a client can be stopped mid-transaction, before any DATA
"""

import argparse
import asyncio
import base64
import itertools
import json
import logging
import os
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

counter = itertools.count(1)
tempfailed = set()
greylisted = set()
dropped = {"data": False}
lock = threading.Lock()


def event(store, kind, **fields):
    with lock, open(os.path.join(store, "events.jsonl"), "a") as log:
        log.write(json.dumps({"event": kind, **fields}) + "\n")


def has(envelope, prefix):
    return any(rcpt.lower().startswith(prefix) for rcpt in envelope.rcpt_tos)


class Handler:
    def __init__(self, store, xoauth2_token_file=None):
        self.store = store
        self.xoauth2_token_file = xoauth2_token_file

    async def auth_XOAUTH2(self, server, args):
        # The initial response: base64 of "user=U\x01auth=Bearer T\x01\x01".
        if len(args) != 2:
            return AuthResult(success=False, handled=False)
        try:
            fields = base64.b64decode(args[1], validate=True).split(b"\x01")
            user = fields[0].removeprefix(b"user=")
            token = fields[1].removeprefix(b"auth=Bearer ")
        except Exception:
            return AuthResult(success=False, handled=False)
        with open(self.xoauth2_token_file, "rb") as current:
            ok = token == current.read().strip()
        event(self.store, "xoauth2", ok=ok, user=user.decode("utf-8", "replace"))
        data = LoginPassword(user, b"") if ok else None
        return AuthResult(success=ok, handled=False, auth_data=data)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.lower()
        if local.startswith("stall-"):
            event(self.store, "stall", rcpt=address)
            await asyncio.sleep(2)
        if local.startswith("reject-"):
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        if local.startswith("busy-once-"):
            with lock:
                first = local not in greylisted
                greylisted.add(local)
            if first:
                return "450 4.2.0 <%s>: Greylisted, try again later" % address
        elif local.startswith("busy-"):
            return "450 4.2.1 <%s>: Mailbox busy, try again" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or b""
        message_id = ""
        for line in data.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode("ascii", "replace")
                break
        event(self.store, "data", message_id=message_id, rcpt_tos=envelope.rcpt_tos)
        if has(envelope, "slow-"):
            await asyncio.sleep(1.5)
        if has(envelope, "permfail-"):
            return "554 5.7.1 Message refused by policy"
        if has(envelope, "tempfail-once-"):
            with lock:
                first = message_id not in tempfailed
                tempfailed.add(message_id)
            if first:
                return "451 4.3.0 Temporary local problem, try again"
        if has(envelope, "drop-after-dot-"):
            server.transport.abort()
            return "250 never sent"
        number = next(counter)
        base = os.path.join(self.store, "%06d" % number)
        with open(base + ".eml.part", "wb") as out:
            out.write(data)
        tls = server.transport.get_extra_info("ssl_object") is not None
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode()
        with open(base + ".json", "w") as out:
            json.dump(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "login": login,
                    "tls": tls,
                },
                out,
            )
        os.rename(base + ".eml.part", base + ".eml")
        return "250 2.0.0 Ok: queued as Q%06d" % number


class FaultySMTP(SMTP):
    async def smtp_EHLO(self, hostname):
        # One "session" per client connection (the controller's own readiness
        # probe never says EHLO; STARTTLS repeats it on the same connection).
        if not getattr(self, "_session_logged", False):
            self._session_logged = True
            event(self.event_store, "session")
        await super().smtp_EHLO(hostname)

    async def smtp_DATA(self, arg):
        if self.envelope is not None and has(self.envelope, "drop-data-once-"):
            with lock:
                first = not dropped["data"]
                dropped["data"] = True
            if first:
                await self.push("354 End data with <CR><LF>.<CR><LF>")
                await asyncio.sleep(0.05)
                event(self.event_store, "dropped-during-data")
                self.transport.abort()
                return
        await super().smtp_DATA(arg)


class FaultyController(Controller):
    def __init__(self, *args, store, **kwargs):
        self.store = store
        super().__init__(*args, **kwargs)

    def factory(self):
        server = FaultySMTP(self.handler, **self.SMTP_kwargs)
        server.event_store = self.store
        return server


def main():
    # Quiet: the tests read the store and the event log, not the chatter.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--tls", choices=["starttls", "implicit", "none"], default="starttls")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--idle-timeout", type=float, default=300)
    parser.add_argument("--xoauth2-token-file")
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    kwargs = dict(
        hostname="127.0.0.1",
        port=args.port,
        store=args.store,
        timeout=args.idle_timeout,
        data_size_limit=64 * 1024 * 1024,
    )
    if args.user is not None:
        kwargs.update(authenticator=authenticator, auth_required=True)
    if args.xoauth2_token_file is not None:
        kwargs.update(auth_required=True)
    else:
        kwargs.update(auth_exclude_mechanism=["XOAUTH2"])
    if args.tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    elif args.tls == "implicit":
        kwargs.update(ssl_context=context, auth_require_tls=False)
        # The readiness check of Controller cannot speak TLS to itself.
        kwargs.update(server_hostname="localhost")
    else:
        kwargs.update(auth_require_tls=False)

    controller = FaultyController(Handler(args.store, args.xoauth2_token_file), **kwargs)
    controller.start()
    print("READY", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
