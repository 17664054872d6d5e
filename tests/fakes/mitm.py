"""A man-in-the-middle proxy on 127.0.0.1 that lets the real CLIProxyAPI serve OAuth accounts here.

The binary sends an OAuth account's traffic to chatgpt.com and api.anthropic.com, through the
account file's `proxy_url` when it has one (internal/watcher/synthesizer/file.go; the executors'
dialer and the management api-call route both use it). This proxy answers that CONNECT, ends the
TLS itself with a certificate for the host signed by a test CA (the binary trusts it through
SSL_CERT_FILE: Go's crypto/x509 reads it on Linux, and the executors' uTLS configs leave RootCAs to
the system pool), and hands each decrypted request, path and headers kept, to a plain HTTP server
(tests/fakes/provider.py), adding `x-mitm-host`. Both protocols the binary speaks are served:
HTTP/2 (the codex executor's Chrome-like uTLS always speaks h2 to chatgpt.com) and HTTP/1.1 (the
claude executor's Claude Code ClientHello offers http/1.1 only; api-call uses Go's own transport).

    with Mitm(target_port=provider_port, workdir=tmp) as mitm:
        env = {"SSL_CERT_FILE": str(mitm.ca_file)}; proxy_url = mitm.url
"""

from __future__ import annotations

import datetime
import http.client
import socket
import socketserver
import ssl
import threading
from pathlib import Path

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "content-length", "host"}


def _make_ca(workdir: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FlowGate test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    ca_file = workdir / "mitm-ca.pem"
    ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, ca_file


def _host_files(workdir: Path, host: str, ca_key, ca_cert) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = workdir / f"mitm-{host}.pem", workdir / f"mitm-{host}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


class Mitm:
    def __init__(self, target_port: int, workdir: Path, timeout: float = 30.0):
        self.target_port, self.workdir, self.timeout = target_port, Path(workdir), timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._ca_key, self._ca_cert, self.ca_file = _make_ca(self.workdir)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self.hosts: list[str] = []  # every CONNECT target, in order
        self.errors: list[str] = []  # what ended a connection early (a refused handshake...)
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _context(self, host: str) -> ssl.SSLContext:
        with self._lock:
            if host not in self._contexts:
                cert_file, key_file = _host_files(self.workdir, host, self._ca_key, self._ca_cert)
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(cert_file, key_file)
                ctx.set_alpn_protocols(["h2", "http/1.1"])
                self._contexts[host] = ctx
            return self._contexts[host]

    # -- the upstream side: one plain HTTP/1.1 exchange with the stand-in ---------------------------

    def forward(self, host: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes):
        conn = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=self.timeout)
        try:
            sent = {k: v for k, v in headers if k.lower() not in HOP and not k.startswith(":")}
            sent.update({"Host": host, "x-mitm-host": host, "Content-Length": str(len(body))})
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, [(k.lower(), v) for k, v in resp.getheaders() if k.lower() not in HOP], data
        finally:
            conn.close()

    # -- the client side ----------------------------------------------------------------------------

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(self.timeout)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk or len(head) > 16384:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(line) < 2 or line[0] != "CONNECT":
            sock.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host = line[1].rsplit(":", 1)[0]
        with self._lock:
            self.hosts.append(host)
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        tls = self._context(host).wrap_socket(sock, server_side=True)
        if tls.selected_alpn_protocol() == "h2":
            self._serve_h2(tls, host)
        else:
            self._serve_h1(tls, host)

    def _serve_h1(self, tls, host: str) -> None:
        reader = tls.makefile("rb")
        while True:
            request_line = reader.readline(65536)
            if not request_line.strip():
                return
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers = []
            while True:
                line = reader.readline(65536)
                if line in (b"\r\n", b"\n", b""):
                    break
                key, _, value = line.decode("latin-1").partition(":")
                headers.append((key.strip(), value.strip()))
            lower = {k.lower(): v for k, v in headers}
            if lower.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(reader.readline().split(b";")[0], 16)
                    if size == 0:
                        reader.readline()
                        break
                    body += reader.read(size)
                    reader.readline()
            else:
                body = reader.read(int(lower.get("content-length") or 0))
            status, reason, out_headers, data = self.forward(host, method, path, headers, body)
            head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out_headers)
            tls.sendall((head + f"content-length: {len(data)}\r\n\r\n").encode("latin-1") + data)

    def _serve_h2(self, tls, host: str) -> None:
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        streams: dict[int, dict] = {}
        while True:
            data = tls.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = {"headers": list(event.headers), "body": b""}
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id]["body"] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    stream = streams.pop(event.stream_id)
                    pseudo = dict(stream["headers"])
                    status, _, out_headers, body = self.forward(host, pseudo[":method"], pseudo[":path"],
                                                                stream["headers"], stream["body"])
                    conn.send_headers(event.stream_id, [(":status", str(status)), *out_headers,
                                                        ("content-length", str(len(body)))])
                    self._h2_send(conn, tls, event.stream_id, body)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    tls.sendall(conn.data_to_send())
                    return
            tls.sendall(conn.data_to_send())

    @staticmethod
    def _h2_send(conn, tls, stream_id: int, body: bytes) -> None:
        import h2.events

        while True:
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if len(body) <= window:
                conn.send_data(stream_id, body, end_stream=True)
                return
            if window > 0:
                conn.send_data(stream_id, body[:window])
                body = body[window:]
            tls.sendall(conn.data_to_send())
            data = tls.recv(65536)  # wait for the peer's WINDOW_UPDATE
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> "Mitm":
        mitm = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    mitm._handle(self.request)
                except (OSError, ssl.SSLError, ValueError) as exc:  # that connection only
                    with mitm._lock:
                        mitm.errors.append(repr(exc))

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "Mitm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
