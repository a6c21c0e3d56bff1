"""Test support for authentication (issue 12): a small PKI, JWKS documents and
JWTs (good and deliberately broken ones), API keys, the ServerConfig `tls` and
`auth` textproto sections, and gRPC channels that carry a client certificate
and/or an `authorization` header.

Everything is generated per test with the `cryptography` package; nothing here
is a fixed secret. Nothing here logs a key or a token.
"""
import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import pathlib
import secrets
import socket
import ssl
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ISSUER = "https://idp.example.test"
AUDIENCE = "cloudplane"

# Client certificate principals, as the server derives them (SPIFFE URI SAN,
# else first DNS SAN, else subject CN).
SPIFFE_ID = "spiffe://example.test/ns/ci/sa/deployer"
DNS_NAME = "worker.example.test"
COMMON_NAME = "alice-cn"

_UTC = datetime.timezone.utc


# ---- PKI ---------------------------------------------------------------------

def _now():
    return datetime.datetime.now(_UTC)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, name="cloudplane test CA"):
        self.key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256()))

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name=None, dns=(), ips=(), uris=(), server=False,
              not_before=None, not_after=None):
        """(certificate, private key) signed by this CA."""
        key = _key()
        now = _now()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name(attrs))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(hours=1))
            .not_valid_after(not_after or now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False))
        names = ([x509.UniformResourceIdentifier(u) for u in uris]
                 + [x509.DNSName(d) for d in dns]
                 + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
        if names:
            # An empty subject needs the SAN critical (RFC 5280 4.2.1.6).
            builder = builder.add_extension(x509.SubjectAlternativeName(names),
                                            critical=not attrs)
        return builder.sign(self.key, hashes.SHA256()), key


class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, and client
    certificates of every kind the tests need, written as PEM files into
    `directory`. Attributes are the file paths (pathlib.Path):

      ca                     the CA that signs the server and the clients
      server_cert/server_key 127.0.0.1 (IP SAN) and localhost (DNS SAN)
      spiffe_cert/_key       URI SAN SPIFFE_ID (and a CN that must not win)
      dns_cert/_key          only DNS SAN DNS_NAME (and a CN that must not win)
      cn_cert/_key           only subject CN COMMON_NAME, no SAN
      expired_cert/_key      SPIFFE_ID, expired yesterday
      foreign_cert/_key      SPIFFE_ID, signed by another CA (foreign_ca)
    """

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.authority = CertificateAuthority()
        self.other_authority = CertificateAuthority("another CA")
        self.ca = self._write("ca.pem", self.authority.pem())
        self.foreign_ca = self._write("foreign-ca.pem", self.other_authority.pem())
        self.server_cert, self.server_key = self.new_server_certificate("server")
        self.spiffe_cert, self.spiffe_key = self._client(
            "spiffe", common_name="not-the-principal", uris=[SPIFFE_ID])
        self.dns_cert, self.dns_key = self._client(
            "dns", common_name="not-the-principal", dns=[DNS_NAME])
        self.cn_cert, self.cn_key = self._client("cn", common_name=COMMON_NAME)
        now = _now()
        self.expired_cert, self.expired_key = self._client(
            "expired", uris=[SPIFFE_ID], not_before=now - datetime.timedelta(days=3),
            not_after=now - datetime.timedelta(days=1))
        self.foreign_cert, self.foreign_key = self._client(
            "foreign", uris=[SPIFFE_ID], authority=self.other_authority)

    def _write(self, name, data):
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def _write_pair(self, name, cert, key):
        return (self._write(name + ".crt", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(name + ".key", _pem_key(key)))

    def _client(self, name, authority=None, **kwargs):
        cert, key = (authority or self.authority).issue(**kwargs)
        return self._write_pair(name, cert, key)

    def new_server_certificate(self, name):
        """A fresh server certificate (new key, new serial) as name.crt/.key."""
        cert, key = self.authority.issue(common_name="cloudplaned", dns=["localhost"],
                                         ips=["127.0.0.1"], server=True)
        return self._write_pair(name, cert, key)

    def client(self, name, common_name=None, dns=(), uris=()):
        """Another client certificate of this CA: (cert path, key path)."""
        return self._client(name, common_name=common_name, dns=dns, uris=uris)


def load_certificate(path):
    return x509.load_pem_x509_certificate(pathlib.Path(path).read_bytes())


def server_certificate(address, ca, cert=None, key=None, timeout=5.0):
    """The certificate the TLS server at `address` ("host:port") presents on
    a new connection, verified against `ca`; a client certificate is sent
    when given (servers that require one)."""
    host, port = address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        with context.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


# ---- JWKS and JWTs -------------------------------------------------------------

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n, size=None):
    return n.to_bytes(size or (n.bit_length() + 7) // 8, "big")


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def jwk(key, kid):
    """The public JWK (a dict) of an RSA or EC P-256 private key."""
    public = key.public_key().public_numbers()
    if isinstance(key, rsa.RSAPrivateKey):
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": b64url(_uint(public.n)), "e": b64url(_uint(public.e))}
    return {"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": b64url(_uint(public.x, 32)), "y": b64url(_uint(public.y, 32))}


def jwks(*keys):
    """A JWKS document (text) from (private key, kid) pairs."""
    return json.dumps({"keys": [jwk(key, kid) for key, kid in keys]})


def claims(sub="alice", issuer=ISSUER, audience=AUDIENCE, lifetime=300, not_before=None,
           groups=None, groups_claim="groups", **extra):
    """A claims dict valid for `lifetime` seconds from now. not_before is
    absolute seconds since the epoch (omitted when None)."""
    now = int(time.time())
    body = {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "exp": now + lifetime}
    if not_before is not None:
        body["nbf"] = int(not_before)
    if groups is not None:
        body[groups_claim] = list(groups)
    body.update(extra)
    return body


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def mint(key, kid, claims_, alg=None):
    """A JWS compact token over `claims_` (a dict).

    alg None picks RS256 for an RSA key and ES256 for an EC key. Deliberately
    broken tokens:
      alg="none"   no signature at all (empty third segment; key unused);
      alg="HS256"  HMAC-SHA256 keyed with the PEM of the key's PUBLIC half (the
                   classic algorithm-confusion attack).
    kid None leaves `kid` out of the header.
    """
    if alg is None:
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = (b64url(json.dumps(header, separators=(",", ":"))) + "." +
                     b64url(json.dumps(claims_, separators=(",", ":")))).encode()
    if alg == "none":
        signature = b""
    elif alg == "HS256":
        signature = hmac.new(public_pem(key), signing_input, hashlib.sha256).digest()
    elif alg == "RS256":
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = _uint(r, 32) + _uint(s, 32)
    else:
        raise ValueError(f"unsupported alg {alg}")
    return signing_input.decode() + "." + b64url(signature)


def bad_signature(token):
    """The token with one bit of its signature flipped."""
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{b64url(bytes(raw))}"


def api_key():
    """(key, lowercase hex SHA-256 of the key) for ApiKey.sha256."""
    key = "cpk_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


# ---- ServerConfig textproto ----------------------------------------------------

def _q(value):
    # JSON string escaping is valid text-format escaping for these values.
    return json.dumps(str(value))


def tls_section(cert=None, key=None, client_ca=None, require_client_certificate=False):
    lines = []
    if cert is not None:
        lines += [f"  cert_file: {_q(cert)}", f"  key_file: {_q(key)}"]
    if client_ca is not None:
        lines.append(f"  client_ca_file: {_q(client_ca)}")
    if require_client_certificate:
        lines.append("  require_client_certificate: true")
    return "tls {\n" + "\n".join(lines) + "\n}\n"


def jwt_section(jwks_file, issuer=ISSUER, audiences=(AUDIENCE,), principal_claim=None,
                groups_claim=None, clock_skew_seconds=None):
    lines = [f"    jwks_file: {_q(jwks_file)}", f"    issuer: {_q(issuer)}"]
    lines += [f"    audiences: {_q(a)}" for a in audiences]
    if principal_claim is not None:
        lines.append(f"    principal_claim: {_q(principal_claim)}")
    if groups_claim is not None:
        lines.append(f"    groups_claim: {_q(groups_claim)}")
    if clock_skew_seconds is not None:
        lines.append(f"    clock_skew_seconds: {int(clock_skew_seconds)}")
    return "  jwt {\n" + "\n".join(lines) + "\n  }\n"


def api_key_entry(principal, sha256, groups=()):
    lines = [f"    principal: {_q(principal)}", f"    sha256: {_q(sha256)}"]
    lines += [f"    groups: {_q(g)}" for g in groups]
    return "  api_keys {\n" + "\n".join(lines) + "\n  }\n"


def binding(role, principals=(), groups=(), accounts=("*",)):
    """role: "VIEWER", "OPERATOR" or "ADMIN"."""
    lines = [f"    role: {role}"]
    lines += [f"    principals: {_q(p)}" for p in principals]
    lines += [f"    groups: {_q(g)}" for g in groups]
    lines += [f"    accounts: {_q(a)}" for a in accounts]
    return "  bindings {\n" + "\n".join(lines) + "\n  }\n"


def auth_section(*parts):
    """`auth { ... }` from jwt_section / api_key_entry / binding strings."""
    return "auth {\n" + "".join(parts) + "}\n"


# ---- Channels and metadata -----------------------------------------------------

def bearer(token):
    """Per-call metadata: `stub.Method(request, metadata=bearer(token))`."""
    return (("authorization", "Bearer " + token),)


def secure_channel(address, ca, cert=None, key=None, options=()):
    """A TLS channel to `address` trusting the PEM file `ca`, presenting the
    client certificate `cert`/`key` (files) when given."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(ca).read_bytes(),
        private_key=pathlib.Path(key).read_bytes() if key is not None else None,
        certificate_chain=pathlib.Path(cert).read_bytes() if cert is not None else None)
    return grpc.secure_channel(address, credentials, options=list(options))


class _Details(grpc.ClientCallDetails):
    def __init__(self, details, metadata):
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                       grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call that does not carry
    an `authorization` entry of its own. `token` may be changed later."""

    def __init__(self, token):
        self.token = token

    def _details(self, details):
        metadata = list(details.metadata or ())
        if self.token is not None and not any(k == "authorization" for k, _ in metadata):
            metadata.append(("authorization", "Bearer " + self.token))
        return _Details(details, metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


def with_token(channel, token):
    """`channel` with `authorization: Bearer <token>` on every call."""
    return grpc.intercept_channel(channel, TokenInterceptor(token))


def refusal(call, *args, **kwargs):
    """Runs call(*args, **kwargs), which must fail; returns (grpc.StatusCode,
    ErrorInfo or None, the error's details text)."""
    from cloudplane_testing import error_details  # noqa: PLC0415
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        return error.code(), error_details(error)[0], error.details()
    raise AssertionError(f"{getattr(call, '__name__', call)} succeeded; a refusal was expected")
