#!/usr/bin/python3
"""A real SMTP server for the mail tests (aiosmtpd, Debian's python3-aiosmtpd).

Listens on 127.0.0.1 only, on --port (0 = any free port). When it is listening it writes the port
to DIR/port (atomically), so the test knows both that it is up and where. Every accepted message is
saved as DIR/msg-<n>.eml (raw bytes as received, after SMTP dot-unstuffing) with its envelope in
DIR/msg-<n>.env ("MAIL FROM" line, then one "RCPT TO" line per recipient); the .eml is renamed into
place last, so a reader never sees half a message. Numbers continue after the highest existing one,
so a restarted server does not overwrite what an earlier one received.

--user/--password-file require SMTP AUTH with that user and password (allowed without TLS: this
is loopback). Recipients starting with "reject" get a permanent 550.
Stops on SIGTERM or SIGINT.
"""
import argparse
import asyncio
import os
import re
import signal
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.dir = directory
        nums = [int(m.group(1)) for f in os.listdir(directory)
                if (m := re.fullmatch(r"msg-(\d+)\.eml", f))]
        self.n = max(nums, default=0)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, "msg-%d" % self.n)
        with open(base + ".env", "w") as f:
            f.write("MAIL FROM %s\n" % envelope.mail_from)
            for r in envelope.rcpt_tos:
                f.write("RCPT TO %s\n" % r)
            f.write("AUTH %s\n" % (session.authenticated and "yes" or "no"))
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as %d" % self.n


class Authenticator:
    def __init__(self, user, password):
        self.user, self.password = user, password

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user
              and auth_data.password == self.password)
        return AuthResult(success=ok, handled=False)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    args = ap.parse_args()

    handler = Sink(args.dir)
    kwargs = {}
    if args.user:
        with open(args.password_file, "rb") as f:
            password = f.read().rstrip(b"\r\n")
        kwargs = dict(authenticator=Authenticator(args.user.encode(), password),
                      auth_required=True, auth_require_tls=False)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", **kwargs), host="127.0.0.1", port=args.port)
    port = server.sockets[0].getsockname()[1]
    tmp = os.path.join(args.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, os.path.join(args.dir, "port"))

    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
