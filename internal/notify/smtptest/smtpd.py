"""An SMTP server for the email channel's test: Debian's python3-aiosmtpd on 127.0.0.1, with STARTTLS
required and AUTH (PLAIN, LOGIN) required over TLS, as a deployment's relay would be.

Usage: smtpd.py PORT CERT_PEM KEY_PEM USER PASSWORD

It prints READY once it listens, then one JSON line per message it accepts: the envelope's sender and
recipients, whether the session was under TLS and authenticated, and the message as received. RCPT TO a
local part "busy" answers 451 (a temporary refusal), "nobody" answers 550 (a permanent one). The first
message to a local part "holdonce" is accepted (printed) but never answered, so that a test can kill the
client between its send and its record of it; later ones are answered. It runs until its standard input
closes or it is killed.
"""
import asyncio
import json
import logging
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, user, password = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # its notices are not the test's


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode() == user and auth_data.password.decode() == password)
    return AuthResult(success=ok, handled=False)


class Handler:
    held = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local == "busy":
            return "451 4.3.0 mailbox busy, try again later"
        if local == "nobody":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "data": envelope.original_content.decode("utf-8", "replace"),
        }), flush=True)
        if not Handler.held and any(a.split("@", 1)[0] == "holdonce" for a in envelope.rcpt_tos):
            Handler.held = True
            await asyncio.Event().wait()  # never answered: the client dies waiting
        return "250 2.0.0 accepted"


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(Handler(), hostname="127.0.0.1", port=int(port), tls_context=context,
                        require_starttls=True, authenticator=authenticate, auth_required=True,
                        auth_require_tls=True)
controller.start()
print("READY", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
