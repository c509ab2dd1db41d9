"""A TLS-terminating nginx in front of a test server, configured like Railway's edge."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from tests.support import PortTakenError, on_a_free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = """
daemon off;
{user}
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {home}/access.log;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {home}/cert.pem;
        ssl_certificate_key {home}/key.pem;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""


class Edge:
    """nginx on a free 127.0.0.1 port, with a fresh self-signed certificate for
    127.0.0.1, forwarding to `upstream`; in the foreground, all its files in `home`."""

    def __init__(self, home: Path, upstream: int) -> None:
        assert Path(NGINX).exists(), "install Debian's nginx (scripts/test does)"
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(home / "key.pem"), "-out", str(home / "cert.pem"),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        self.upstream = upstream
        # nginx must be told its port: a port taken meanwhile is tried again on another.
        self.port, self.process = on_a_free_port(self._start)

    def _start(self, port: int) -> tuple[int, subprocess.Popen[bytes]]:
        user = "user root;" if os.geteuid() == 0 else ""
        config = CONFIG.format(home=self.home, port=port, upstream=self.upstream, user=user)
        (self.home / "nginx.conf").write_text(config)
        (self.home / "error.log").unlink(missing_ok=True)
        (self.home / "nginx.pid").unlink(missing_ok=True)
        self.port = port
        self.process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.home),
                "-c",
                str(self.home / "nginx.conf"),
                "-e",
                str(self.home / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening()
        return port, self.process

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this edge's certificate (and only it)."""
        return ssl.create_default_context(cafile=str(self.home / "cert.pem"))

    def _wait_listening(self, timeout: float = 30) -> None:
        """Until nginx listens: it writes its pid file once its sockets are bound, so a
        connection accepted before that is another process's on a port taken meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "Address already in use" in self.error_log():
                    raise PortTakenError(self.port)
                raise AssertionError(f"nginx exited:\n{self.error_log()}")
            if not (self.home / "nginx.pid").exists():
                time.sleep(0.05)
                continue
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"nginx not listening within {timeout}s:\n{self.error_log()}")

    def error_log(self) -> str:
        path = self.home / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # nginx's fast shutdown
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def bound_socket(source: str, port: int) -> socket.socket:
    """A TCP connection from `source` (another loopback address) to 127.0.0.1:`port`."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock
