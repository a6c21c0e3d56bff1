"""Self-tests of tests/auth_testing.py, without cloudplaned: the certificates
carry the names the server maps to principals and chain (or not) to the CA;
the tokens verify (or not) as their names say; the channels present the
client certificate and the token to a Python gRPC server with mutual TLS."""
import base64
import datetime
import hashlib
import json
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import auth_testing as at


def _segments(token):
    def dec(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    head, payload, signature = token.split(".")
    return json.loads(dec(head)), json.loads(dec(payload)), dec(signature), \
        f"{head}.{payload}".encode()


def _verify(token, key):
    """Verifies with the PUBLIC key the way a correct verifier does: the
    algorithm comes from the key, never from the header."""
    _, _, signature, signing_input = _segments(token)
    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        if len(signature) != 64:
            raise InvalidSignature()
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return at.Pki(tmp_path_factory.mktemp("pki"))


def _san(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _signed_by(cert, ca):
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def test_pki_names_and_chains(pki):
    ca = at.load_certificate(pki.ca)
    foreign_ca = at.load_certificate(pki.foreign_ca)
    server = at.load_certificate(pki.server_cert)
    assert _san(server).get_values_for_type(x509.IPAddress)[0].compressed == "127.0.0.1"
    assert _san(server).get_values_for_type(x509.DNSName) == ["localhost"]

    spiffe = at.load_certificate(pki.spiffe_cert)
    assert _san(spiffe).get_values_for_type(x509.UniformResourceIdentifier) == [at.SPIFFE_ID]
    dns = at.load_certificate(pki.dns_cert)
    assert _san(dns).get_values_for_type(x509.DNSName) == [at.DNS_NAME]
    assert _san(dns).get_values_for_type(x509.UniformResourceIdentifier) == []
    cn = at.load_certificate(pki.cn_cert)
    assert _san(cn) is None
    assert cn.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == \
        at.COMMON_NAME

    for cert in (server, spiffe, dns, cn, at.load_certificate(pki.expired_cert)):
        assert _signed_by(cert, ca)
    foreign = at.load_certificate(pki.foreign_cert)
    assert not _signed_by(foreign, ca) and _signed_by(foreign, foreign_ca)
    assert at.load_certificate(pki.expired_cert).not_valid_after_utc < \
        datetime.datetime.now(datetime.timezone.utc)

    again, _ = pki.new_server_certificate("server-2")
    assert at.load_certificate(again).serial_number != server.serial_number


def test_tokens_verify_as_named():
    rsa_key, ec_key = at.rsa_key(), at.ec_key()
    doc = json.loads(at.jwks((rsa_key, "rsa-1"), (ec_key, "ec-1")))
    assert [(k["kty"], k["kid"]) for k in doc["keys"]] == [("RSA", "rsa-1"), ("EC", "ec-1")]
    assert len(base64.urlsafe_b64decode(doc["keys"][1]["x"] + "=")) == 32

    good_rs = at.mint(rsa_key, "rsa-1", at.claims(sub="bob", groups=["ops"]))
    header, payload, _, _ = _segments(good_rs)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}
    assert payload["sub"] == "bob" and payload["groups"] == ["ops"]
    assert payload["iss"] == at.ISSUER and payload["aud"] == at.AUDIENCE
    _verify(good_rs, rsa_key)
    good_es = at.mint(ec_key, "ec-1", at.claims())
    assert _segments(good_es)[0]["alg"] == "ES256"
    _verify(good_es, ec_key)

    with pytest.raises(InvalidSignature):
        _verify(at.bad_signature(good_rs), rsa_key)
    with pytest.raises(InvalidSignature):
        _verify(at.bad_signature(good_es), ec_key)
    with pytest.raises(InvalidSignature):
        _verify(at.mint(at.ec_key(), "ec-1", at.claims()), ec_key)  # another key, our kid

    none = at.mint(rsa_key, "rsa-1", at.claims(), alg="none")
    assert none.endswith(".") and _segments(none)[0]["alg"] == "none"
    hs = at.mint(rsa_key, "rsa-1", at.claims(), alg="HS256")
    assert _segments(hs)[0]["alg"] == "HS256" and len(_segments(hs)[2]) == 32
    assert "kid" not in _segments(at.mint(ec_key, None, at.claims()))[0]


def test_api_key_is_its_sha256():
    key, digest = at.api_key()
    assert hashlib.sha256(key.encode()).hexdigest() == digest and len(digest) == 64
    assert at.api_key()[0] != key


def _echo_server(pki, require_client_certificate):
    """A Python gRPC server with mutual TLS whose one method answers with the
    caller's authorization header and certificate URI SAN."""
    def echo(request, context):
        metadata = dict(context.invocation_metadata())
        auth = context.auth_context()
        cert = auth.get("x509_pem_cert", [b""])[0]
        uri = ""
        if cert:
            san = _san(x509.load_pem_x509_certificate(cert))
            uri = (san.get_values_for_type(x509.UniformResourceIdentifier) or [""])[0] \
                if san else ""
        return json.dumps({"authorization": metadata.get("authorization", ""),
                           "uri": uri}).encode()

    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials(
        [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())],
        root_certificates=pki.ca.read_bytes(),
        require_client_auth=require_client_certificate)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, f"127.0.0.1:{port}"


def _echo(channel, metadata=None):
    call = channel.unary_unary("/test.Echo/Echo")
    return json.loads(call(b"", metadata=metadata, timeout=10))


def test_channels_carry_certificate_and_token(pki):
    server, address = _echo_server(pki, require_client_certificate=True)
    try:
        with at.secure_channel(address, pki.ca, pki.spiffe_cert, pki.spiffe_key) as channel:
            assert _echo(channel) == {"authorization": "", "uri": at.SPIFFE_ID}
            assert _echo(channel, at.bearer("t0"))["authorization"] == "Bearer t0"
            tokened = at.with_token(channel, "t1")
            assert _echo(tokened)["authorization"] == "Bearer t1"
            # An explicit header wins over the interceptor's.
            assert _echo(tokened, at.bearer("t2"))["authorization"] == "Bearer t2"
        for cert, key in ((None, None), (pki.foreign_cert, pki.foreign_key),
                          (pki.expired_cert, pki.expired_key)):
            with at.secure_channel(address, pki.ca, cert, key) as channel:
                with pytest.raises(grpc.RpcError) as refused:
                    _echo(channel)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        peer = at.server_certificate(address, pki.ca, pki.spiffe_cert, pki.spiffe_key)
        assert peer.serial_number == at.load_certificate(pki.server_cert).serial_number
    finally:
        server.stop(None)


def test_config_sections():
    text = at.tls_section("/c.pem", "/k.pem", "/ca.pem", True) + at.auth_section(
        at.jwt_section("/jwks.json", groups_claim="groups", clock_skew_seconds=5),
        at.api_key_entry("ci", "ab" * 32, groups=["deployers"]),
        at.binding("OPERATOR", principals=["alice"], groups=["ops"], accounts=["sandbox"]))
    for expected in ('cert_file: "/c.pem"', 'client_ca_file: "/ca.pem"',
                     "require_client_certificate: true", 'jwks_file: "/jwks.json"',
                     f'issuer: "{at.ISSUER}"', 'audiences: "cloudplane"', "clock_skew_seconds: 5",
                     'groups_claim: "groups"', 'principal: "ci"', 'groups: "deployers"',
                     "role: OPERATOR", 'principals: "alice"', 'accounts: "sandbox"'):
        assert expected in text
    assert text.count("{") == text.count("}")
