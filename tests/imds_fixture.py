"""A small EC2 instance metadata service (IMDSv2) for the end-to-end tests:
an HTTP server in a thread on a free local port, serving a session token,
an instance identity document and its base64 RSA signature, as IMDS does.

The signature is RSA PKCS#1 v1.5 over SHA-256 of the document's exact bytes,
made with the local stack's test key (.local/ec2-identity/key.pem, written
by infra/provision.py), whose certificate the local control plane trusts in
place of AWS's. Each way an instance can fail to prove itself has a switch:

    ImdsServer(doc, v1_only=True)          token PUT refused, document served without a token
    ImdsServer(doc, signing_key=other)     signed by a key the control plane does not trust
    ImdsServer(doc, tamper={"k": v})       fields changed after signing
    ImdsServer(doc, serve_signature=False) /signature answers 404

and a document for another account or region is `identity_document(...,
account_id=..., region=...)`, signed with the trusted key.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parent.parent
TRUSTED_KEY = ROOT / ".local" / "ec2-identity" / "key.pem"

TOKEN_PATH = "/latest/api/token"
DOCUMENT_PATH = "/latest/dynamic/instance-identity/document"
SIGNATURE_PATH = "/latest/dynamic/instance-identity/signature"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
# IMDS grants tokens of 1 second to 6 hours.
MAX_TTL_SECONDS = 21600


def trusted_key():
    """The RSA key whose certificate the local stack trusts."""
    if not TRUSTED_KEY.exists():
        raise FileNotFoundError(f"no {TRUSTED_KEY}: run infra/provision.py (make stack) first")
    return serialization.load_pem_private_key(TRUSTED_KEY.read_bytes(), password=None)


def other_key():
    """An RSA-2048 key nothing trusts."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def identity_document(
    instance_id,
    *,
    account_id="000000000000",
    region="us-east-1",
    availability_zone=None,
    image_id="ami-0123456789abcdef0",
    instance_type="t3.micro",
    private_ip="10.0.0.10",
    architecture="x86_64",
    pending_time="2026-01-01T00:00:00Z",
):
    """An identity document with the fields IMDS gives, in its order."""
    return {
        "accountId": account_id,
        "architecture": architecture,
        "availabilityZone": availability_zone or f"{region}a",
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": image_id,
        "instanceId": instance_id,
        "instanceType": instance_type,
        "kernelId": None,
        "pendingTime": pending_time,
        "privateIp": private_ip,
        "ramdiskId": None,
        "region": region,
        "version": "2017-09-30",
    }


def document_from_instance(instance, **overrides):
    """The document of an instance as EC2's DescribeInstances/RunInstances
    describes it (a dict of boto3's)."""
    placement = instance.get("Placement") or {}
    az = placement.get("AvailabilityZone") or "us-east-1a"
    launch = instance.get("LaunchTime")
    fields = {
        "region": az[:-1],
        "availability_zone": az,
        "image_id": instance["ImageId"],
        "instance_type": instance["InstanceType"],
        "private_ip": instance.get("PrivateIpAddress") or "10.0.0.10",
        "architecture": instance.get("Architecture") or "x86_64",
    }
    if launch is not None:
        fields["pending_time"] = launch.strftime("%Y-%m-%dT%H:%M:%SZ")
    fields.update(overrides)
    return identity_document(instance["InstanceId"], **fields)


def document_text(document):
    """The document as IMDS serves it: pretty-printed with a space on each
    side of the colon, no final line break."""
    return json.dumps(document, indent=2, separators=(",", " : "))


def sign(text, key=None):
    """The base64 RSA PKCS#1 v1.5 SHA-256 signature of `text`'s bytes,
    wrapped at 64 characters as IMDS serves it."""
    key = key or trusted_key()
    raw = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    b64 = base64.b64encode(raw).decode()
    return "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))


def tampered(text, changes):
    """`text` with `changes` applied to its fields, formatted the same."""
    doc = json.loads(text)
    doc.update(changes)
    return document_text(doc)


class ImdsServer:
    """IMDS on 127.0.0.1:<free port>; `endpoint` is its URL. Use as a
    context manager, or call `close()`."""

    def __init__(self, document, *, signing_key=None, tamper=None, v1_only=False, v1_token_status=405,
                 serve_signature=True):
        self.set_document(document, signing_key=signing_key, tamper=tamper)
        self.v1_only = v1_only
        self.v1_token_status = v1_token_status
        self.serve_signature = serve_signature
        self.tokens = set()
        # (method, path, status) of every request, in order.
        self.requests = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="imds", daemon=True)
        self._thread.start()

    def set_document(self, document, *, signing_key=None, tamper=None):
        """Serves `document` (a dict, or the exact text) and its signature
        by `signing_key` (the trusted test key by default); `tamper`'s
        changes are made after signing."""
        text = document if isinstance(document, str) else document_text(document)
        self.signature = sign(text, signing_key)
        self.document = tampered(text, tamper) if tamper else text

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._server.shutdown()
        self._server.server_close()

    def paths(self, method=None):
        with self._lock:
            return [p for m, p, _ in self.requests if method is None or m == method]

    def _record(self, method, path, status):
        with self._lock:
            self.requests.append((method, path, status))

    def _handler(self):
        imds = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "EC2ws"
            sys_version = ""

            def log_message(self, *args):
                pass

            def _answer(self, status, body="", content_type="text/plain"):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                imds._record(self.command, self.path, status)

            def do_PUT(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path != TOKEN_PATH:
                    return self._answer(404, "Not Found")
                if imds.v1_only:
                    return self._answer(imds.v1_token_status, "Forbidden" if imds.v1_token_status == 403 else "")
                ttl = self.headers.get(TTL_HEADER, "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL_SECONDS:
                    return self._answer(400, "Bad Request")
                token = base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()
                with imds._lock:
                    imds.tokens.add(token)
                self._answer(200, token)

            def do_GET(self):
                if self.path not in (DOCUMENT_PATH, SIGNATURE_PATH):
                    return self._answer(404, "Not Found")
                if not imds.v1_only:
                    token = self.headers.get(TOKEN_HEADER, "")
                    with imds._lock:
                        valid = token in imds.tokens
                    if not valid:
                        return self._answer(401, "Unauthorized")
                if self.path == DOCUMENT_PATH:
                    return self._answer(200, imds.document)
                if not imds.serve_signature:
                    return self._answer(404, "Not Found")
                self._answer(200, imds.signature)

        return Handler
