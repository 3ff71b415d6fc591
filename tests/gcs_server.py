"""A Cloud Storage server on localhost, so that `gs://` paths can be tested offline.

gcp-storage-emulator answers the JSON API (`/storage/v1`, `/upload/storage/v1`) from memory.
The clients that a training run uses each reach it their own way, unchanged otherwise:

- tensorstore (orbax's arrays): `TENSORSTORE_GCS_HTTP_URL`;
- google-cloud-storage (orbax's bucket checks): `STORAGE_EMULATOR_HOST`;
- TensorFlow's file system (etils.epath, clu's summaries): its endpoint is fixed at
  `https://www.googleapis.com`, so it goes through `https_proxy` to a CONNECT proxy here that
  ends the TLS with a certificate made for that name (`CURL_CA_BUNDLE`) and serves the same API.

Four differences between the emulator and real GCS are mended here: a body sent with
both `Transfer-Encoding: chunked` and `Content-Length` (TensorFlow does) is read as chunked, as
RFC 9112 6.3 says; an empty upload is an empty object; a download names the object's
generation (`x-goog-generation`), which tensorstore needs; and a bucket's `storageLayout`
(no hierarchical namespace), which TensorFlow asks for before it renames a folder.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socketserver
import ssl
import threading
from functools import partial
from http import server
from typing import Dict
from urllib.parse import unquote, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.handlers import buckets
from gcp_storage_emulator.storage import Storage

TLS_HOSTS = ("www.googleapis.com", "storage.googleapis.com")
_read_data = emulator._read_data


def _read_data_allowing_empty_uploads(handler, query):
    """The emulator reads an empty body as None, which its media upload cannot store."""
    data = _read_data(handler, query)
    return b"" if data is None and query.get("uploadType") == ["media"] else data


emulator._read_data = _read_data_allowing_empty_uploads


class _Handler(emulator.RequestHandler):
    """The emulator's request handler, with the mends listed in the module docstring."""

    tls = False

    def do_GET(self):
        match = re.match(r"^/storage/v1/b/([^/?]+)/storageLayout", self.path)
        if match and match[1] in self.storage.buckets:
            body = json.dumps({"kind": "storage#storageLayout", "bucket": match[1],
                               "hierarchicalNamespace": {"enabled": False}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_POST(self):
        self._mend_framing()
        super().do_POST()

    def do_PUT(self):
        self._mend_framing()
        super().do_PUT()

    def _mend_framing(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            del self.headers["Content-Length"]
        elif "Content-Length" not in self.headers:
            self.headers["Content-Length"] = "0"

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def send_header(self, keyword, value):
        if self.tls and keyword == "Location":  # resumable uploads continue over TLS
            value = re.sub(r"^http://", "https://", value)
        super().send_header(keyword, value)

    def end_headers(self):
        url = urlparse(self.path)
        match = re.match(r"^(?:/download)?/storage/v1/b/([^/]+)/o/(.+)$", url.path)
        if match and "alt=media" in url.query and getattr(self, "_status", 0) in (200, 206):
            item = self.storage.objects.get(match[1], {}).get(unquote(match[2]))
            if item:
                self.send_header("x-goog-generation", str(item["generation"]))
                self.send_header("x-goog-metageneration", str(item.get("metageneration", 1)))
        super().end_headers()


class _TlsHandler(_Handler):
    tls = True


class _ConnectProxy(socketserver.StreamRequestHandler):
    """Answers `CONNECT host:443`, ends the TLS itself and serves the API on the tunnel."""

    def handle(self):
        request_line = self.rfile.readline().decode("latin-1")
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        host = request_line.split()[1].split(":")[0] if request_line.startswith("CONNECT") else ""
        if host not in TLS_HOSTS:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        with self.server.tls.wrap_socket(self.request, server_side=True) as tunnel:
            _TlsHandler(self.server.storage, tunnel, self.client_address, self.server)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


def _self_signed(directory: str) -> tuple[str, str]:
    """A certificate for TLS_HOSTS and its key, written to `directory`; returns their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_HOSTS[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in TLS_HOSTS]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


class GcsServer:
    """An in-memory Cloud Storage with one bucket, served while the context is open.

        with GcsServer(tmp_path, "bucket") as gcs:
            subprocess.run(..., env={**os.environ, **gcs.environ})
    """

    def __init__(self, directory: str, bucket: str):
        self.storage = Storage(use_memory_fs=True)
        buckets.create_bucket(bucket, self.storage)
        self.cert, key = _self_signed(str(directory))
        self._api = server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, self.storage))
        self._proxy = _ProxyServer(("127.0.0.1", 0), _ConnectProxy)
        self._proxy.storage = self.storage
        self._proxy.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._proxy.tls.load_cert_chain(self.cert, key)

    @property
    def environ(self) -> Dict[str, str]:
        """Environment variables that send every client of a child process here."""
        api = f"http://127.0.0.1:{self._api.server_port}"
        return {
            "TENSORSTORE_GCS_HTTP_URL": api,
            "STORAGE_EMULATOR_HOST": api,
            "https_proxy": f"http://127.0.0.1:{self._proxy.server_address[1]}",
            "no_proxy": "127.0.0.1,localhost",
            "CURL_CA_BUNDLE": self.cert,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "offline",
            "NO_GCE_CHECK": "true",
        }

    def objects(self, bucket: str) -> list[str]:
        """Names of the objects in `bucket`."""
        return sorted(self.storage.objects.get(bucket, {}))

    def __enter__(self) -> "GcsServer":
        for s in (self._api, self._proxy):
            threading.Thread(target=s.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for s in (self._api, self._proxy):
            s.shutdown()
            s.server_close()
