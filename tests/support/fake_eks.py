"""A fake EKS API server for the tests, over TLS with a CA it makes itself.

It authenticates every request as EKS does (aws-iam-authenticator's checks): the
bearer token must be `k8s-aws-v1.` and the unpadded base64url of a presigned STS
GetCallerIdentity GET URL for the STS it is told about, with the header
`x-k8s-aws-id: <its cluster>` signed, an X-Amz-Date less than 15 minutes old and only
the parameters such a URL has. The SigV4 signature is recomputed with botocore from
the session credentials, with this cluster's name as the header's value: the secret
is the one moto issued for the key (from moto's /moto-api/data.json), or, for another
STS, the one --keys FILE gives ({access key: secret}). It then asks that STS who the key is
(GetCallerIdentity signed with the same credentials; moto cannot answer the presigned
GET itself) and takes the caller's ARN as the user's name.

It answers /version, /api, /apis and SelfSubjectReview (`kubectl auth whoami`);
anything unauthenticated gets 401. Each decision is one line in DIR/log: `accepted
ARN` or `refused: REASON`. Accepted tokens are remembered for 2 minutes (as the
API server's token cache does), until their own expiry.

Usage: python fake_eks.py --dir DIR --cluster NAME --sts URL [--keys FILE]
Writes DIR/ca.pem (the CA to trust) and DIR/port once it listens on 127.0.0.1.
"""

import argparse
import base64
import datetime
import hmac
import http.server
import ipaddress
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request

import botocore.session
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
MAX_TOKEN = 4096
LIFETIME = 15 * 60
CACHE_SECS = 120
ALLOWED = {
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
}


class Refused(Exception):
    pass


def make_certs(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-eks-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(directory, "server.pem"), "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(os.path.join(directory, "server.key"), "wb") as f:
        f.write(
            key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


class Verifier:
    def __init__(self, cluster, sts, keys):
        self.cluster = cluster
        self.sts = urllib.parse.urlsplit(sts)
        self.keys = keys
        self.session = botocore.session.get_session()
        self.cache = {}
        self.lock = threading.Lock()

    def secret(self, access_key):
        """The secret of a session key: from --keys, else as moto issued it (its
        /moto-api/data.json lists the roles it assumed, with their keys)."""
        if self.keys:
            try:
                with open(self.keys) as f:
                    found = json.load(f).get(access_key)
                if found:
                    return found
            except FileNotFoundError:
                pass
        try:
            url = f"{self.sts.scheme}://{self.sts.netloc}/moto-api/data.json"
            with urllib.request.urlopen(url, timeout=10) as r:
                roles = json.load(r).get("sts", {}).get("AssumedRole", [])
        except Exception:
            return None
        return next(
            (r["secret_access_key"] for r in roles if r.get("access_key_id") == access_key),
            None,
        )

    def verify(self, token):
        with self.lock:
            hit = self.cache.get(token)
        if hit and time.time() < min(hit[1], hit[2]):
            return hit[0]
        arn, deadline = self.check(token)
        with self.lock:
            self.cache[token] = (arn, deadline, time.time() + CACHE_SECS)
        return arn

    def check(self, token):
        if len(token) > MAX_TOKEN:
            raise Refused("token is too large")
        if not token.startswith(PREFIX):
            raise Refused(f"token is missing the {PREFIX} prefix")
        body = token[len(PREFIX):]
        if "=" in body:
            raise Refused("token is padded base64")
        try:
            url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        except Exception as e:
            raise Refused(f"token is not base64url: {e}")
        parts = urllib.parse.urlsplit(url)
        if (parts.scheme, parts.netloc) != (self.sts.scheme, self.sts.netloc):
            raise Refused(f"unexpected STS endpoint {parts.scheme}://{parts.netloc}")
        if parts.path != "/":
            raise Refused("unexpected path in the pre-signed URL")
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        params, lower = {}, {}
        for k, v in pairs:
            if k.lower() not in ALLOWED:
                raise Refused(f"parameter {k} is not allowed")
            if k.lower() in lower:
                raise Refused(f"parameter {k} given twice")
            params[k] = v
            lower[k.lower()] = v
        if lower.get("action") != "GetCallerIdentity":
            raise Refused("the URL is not a GetCallerIdentity call")
        if CLUSTER_HEADER not in lower.get("x-amz-signedheaders", "").lower().split(";"):
            raise Refused(f"the {CLUSTER_HEADER} header is not signed")
        try:
            expires = int(lower.get("x-amz-expires", ""))
        except ValueError:
            raise Refused("no X-Amz-Expires")
        if not 0 <= expires <= 900:
            raise Refused(f"X-Amz-Expires {expires} out of range")
        try:
            signed_at = datetime.datetime.strptime(lower["x-amz-date"], "%Y%m%dT%H%M%SZ")
        except (KeyError, ValueError):
            raise Refused("no valid X-Amz-Date")
        deadline = signed_at.replace(tzinfo=datetime.timezone.utc).timestamp() + LIFETIME
        if time.time() > deadline:
            raise Refused(f"X-Amz-Date {lower['x-amz-date']} is expired (15 minute expiration)")
        signer = self.check_signature(parts, params, lower, expires)
        return self.who(signer), deadline

    def check_signature(self, parts, params, lower, expires):
        scope = lower.get("x-amz-credential", "").split("/")
        if len(scope) != 5 or scope[3] != "sts" or scope[4] != "aws4_request":
            raise Refused("bad X-Amz-Credential scope")
        access_key, _, region = scope[0], scope[1], scope[2]
        secret = self.secret(access_key)
        if secret is None:
            raise Refused(f"unknown access key {access_key}")
        given = next(v for k, v in params.items() if k.lower() == "x-amz-signature")
        signed = {k: v for k, v in params.items() if k.lower() != "x-amz-signature"}
        request = AWSRequest(
            method="GET",
            url=f"{parts.scheme}://{parts.netloc}/",
            params=signed,
            headers={CLUSTER_HEADER: self.cluster},
        )
        request.context["timestamp"] = lower["x-amz-date"]
        creds = Credentials(access_key, secret, lower.get("x-amz-security-token"))
        auth = SigV4QueryAuth(creds, "sts", region, expires=expires)
        string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
        expected = auth.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, given):
            raise Refused(
                f"signature mismatch (not signed by {access_key}'s secret for cluster {self.cluster})"
            )
        return access_key, secret, lower.get("x-amz-security-token"), region

    def who(self, signer):
        access_key, secret, token, region = signer
        client = self.session.create_client(
            "sts",
            region_name=region,
            endpoint_url=f"{self.sts.scheme}://{self.sts.netloc}",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )
        try:
            return client.get_caller_identity()["Arn"]
        except Exception as e:
            raise Refused(f"STS did not say who {access_key} is: {e}")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code, reason, message):
        self.send_json(
            code,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            },
        )

    def authenticate(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            self.server.note("refused: no bearer token")
            return None
        try:
            arn = self.server.verifier.verify(auth[len("Bearer "):].strip())
        except Refused as e:
            self.server.note(f"refused: {e}")
            return None
        self.server.note(f"accepted {arn}")
        return arn

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        arn = self.authenticate()
        if arn is None:
            return self.status(401, "Unauthorized", "Unauthorized")
        path = urllib.parse.urlsplit(self.path).path
        if self.command == "GET" and path == "/version":
            return self.send_json(
                200,
                {"major": "1", "minor": "32", "gitVersion": "v1.32.0-eks-fake", "platform": "linux/amd64"},
            )
        if self.command == "GET" and path == "/api":
            return self.send_json(
                200,
                {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
            )
        if self.command == "GET" and path == "/apis":
            gv = {"groupVersion": "authentication.k8s.io/v1", "version": "v1"}
            return self.send_json(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [{"name": "authentication.k8s.io", "versions": [gv], "preferredVersion": gv}],
                },
            )
        if self.command == "POST" and path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":
            return self.send_json(
                201,
                {
                    "kind": "SelfSubjectReview",
                    "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": None},
                    "status": {
                        "userInfo": {
                            "username": arn,
                            "groups": ["system:authenticated"],
                            "extra": {"arn": [arn]},
                        }
                    },
                },
            )
        return self.status(404, "NotFound", f"the server could not find {path}")

    do_GET = handle_any
    do_POST = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, verifier, log):
        super().__init__(("127.0.0.1", 0), Handler)
        self.verifier = verifier
        self.log = log
        self.log_lock = threading.Lock()

    def note(self, line):
        with self.log_lock, open(self.log, "a") as f:
            f.write(line.replace("\n", " ") + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--sts", required=True)
    p.add_argument("--keys")
    a = p.parse_args()
    make_certs(a.dir)
    server = Server(Verifier(a.cluster, a.sts, a.keys), os.path.join(a.dir, "log"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(a.dir, "server.pem"), os.path.join(a.dir, "server.key"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port_file = os.path.join(a.dir, "port")
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
