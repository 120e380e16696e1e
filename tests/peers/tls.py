"""HTTPS in front of the sandbox's plain-HTTP ports, because b24pysdk only speaks https.

A throw-away CA signs a leaf certificate for 127.0.0.1; the client trusts the CA file only. A
`TlsTerminator` accepts TLS on an ephemeral port and pipes the decrypted bytes to one upstream port,
so keep-alive, redirects and bodies pass through unchanged. The sandbox routes by the port a
connection arrives on, not by the Host header, so the terminator needs no HTTP knowledge.
"""
from __future__ import annotations

import datetime
import ipaddress
import selectors
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """Write `ca.pem`, `server.pem` and `server.key` into `folder`; returns their paths.

    A CA plus a leaf (rather than one self-signed leaf) satisfies strict X.509 checks in every
    OpenSSL/urllib3 combination.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("b24app peers test CA")
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(HOST)).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The terminators' TLS context (TLS 1.2+)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


class TlsTerminator:
    """`https://127.0.0.1:<port>` → `http://<upstream>`, one thread per connection."""

    def __init__(self, upstream: tuple[str, int], context: ssl.SSLContext) -> None:
        self.upstream = upstream
        self._context = context
        self._stopped = threading.Event()
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"tls-{self.port}", daemon=True)
        self._thread.start()

    @property
    def domain(self) -> str:
        """`127.0.0.1:<port>`: what a client library takes as the portal domain."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.domain}"

    @property
    def upstream_url(self) -> str:
        return f"http://{self.upstream[0]}:{self.upstream[1]}"

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """Handshake off the accept thread, so one slow client cannot stall the others."""
        try:
            conn.settimeout(10)
            tls = self._context.wrap_socket(conn, server_side=True)
            tls.settimeout(None)
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except OSError:
            conn.close()
            return
        with tls, upstream:
            _pipe(tls, upstream, self._stopped)


def _pipe(tls: ssl.SSLSocket, upstream: socket.socket, stopped: threading.Event) -> None:
    """Copy bytes both ways until either side closes.

    One thread drives both directions: an SSL object must not be read and written from two threads
    at once. Decrypted bytes OpenSSL already buffered (`pending()`) are drained at once, because
    `select` only sees the raw socket.
    """
    with selectors.DefaultSelector() as selector:
        selector.register(tls, selectors.EVENT_READ)
        selector.register(upstream, selectors.EVENT_READ)
        while not stopped.is_set():
            for key, _ in selector.select(timeout=0.5):
                source = key.fileobj
                try:
                    if source is tls:
                        data = tls.recv(65536)
                        while data and tls.pending():
                            data += tls.recv(tls.pending())
                        target: socket.socket = upstream
                    else:
                        data = upstream.recv(65536)
                        target = tls
                    if not data:
                        return
                    target.sendall(data)
                except OSError:
                    return
