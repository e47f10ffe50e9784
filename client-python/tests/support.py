"""Shared test fixtures: the module's import path, a recording varlink server, and the
varlink-go-certification server process."""

import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLIENT_DIR = Path(__file__).resolve().parent.parent
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

STARTUP_SECONDS = 5.0


def wait_for(condition, what, seconds=STARTUP_SECONDS):
    """Polls ``condition`` until it is true; fails the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            self._serve()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: some tests make it (e.g. over its reply limit)

    def _serve(self):
        server = self.server
        buf = b""
        while True:
            nul = buf.find(b"\0")
            if nul < 0:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                buf += chunk
                continue
            raw, buf = buf[:nul], buf[nul + 1:]
            request = json.loads(raw.decode("utf-8"))
            with server.lock:
                server.raw_requests.append(raw)
                server.requests.append(request)
                script = server.script.get(request.get("method"), server.default)
            replies = script(request) if callable(script) else script
            if request.get("oneway"):
                continue
            for reply in replies:
                if reply is None:  # hang up
                    return
                if isinstance(reply, (bytes, bytearray)):
                    self.request.sendall(reply)  # raw bytes, framing is the test's job
                else:
                    self.request.sendall(json.dumps(reply).encode("utf-8") + b"\0")


class RecordingServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A test double of a varlink service: records every request and answers with
    canned replies.

    ``script`` maps a method name to a list of replies, or to a function of the
    request returning one. A reply is a dict (sent as JSON + NUL), raw bytes (sent
    as they are), or None (close the connection). Methods not in the script get
    ``default``: an org.varlink.service.MethodNotFound error.
    """

    daemon_threads = True

    def __init__(self):
        self._dir = tempfile.mkdtemp(prefix="kms-fake-")
        self.path = os.path.join(self._dir, "kms.sock")
        self.lock = threading.Lock()
        self.requests = []
        self.raw_requests = []
        self.script = {}
        self.default = lambda req: [{"error": "org.varlink.service.MethodNotFound",
                                     "parameters": {"method": req.get("method")}}]
        super().__init__(self.path, _Handler)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

    def reply(self, method, parameters=None):
        """Scripts ``method`` to answer every call with ``parameters``."""
        self.script[method] = [{"parameters": parameters} if parameters is not None else {}]

    def fail(self, method, error, parameters=None):
        """Scripts ``method`` to answer with the error reply ``error``."""
        msg = {"error": error}
        if parameters is not None:
            msg["parameters"] = parameters
        self.script[method] = [msg]

    def last(self):
        """The last request received."""
        with self.lock:
            return self.requests[-1]

    def stop(self):
        self.shutdown()
        self.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)


CERTIFICATION_BINARY = os.environ.get("VARLINK_CERTIFICATION", "varlink-go-certification")


class CertificationServer:
    """``varlink-go-certification`` running as a server on a socket in a temp dir."""

    def __init__(self):
        binary = shutil.which(CERTIFICATION_BINARY)
        if binary is None:
            raise AssertionError(f"{CERTIFICATION_BINARY} not found: install the Debian package varlink-go")
        self._dir = tempfile.mkdtemp(prefix="varlink-cert-")
        self.path = os.path.join(self._dir, "cert.sock")
        self.process = subprocess.Popen([binary, "--varlink", f"unix:{self.path}"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        try:
            # The socket file appears at bind(), before listen(): wait until it accepts.
            wait_for(lambda: self._accepts() or self.process.poll() is not None,
                     f"{binary} to listen on {self.path}")
            if self.process.poll() is not None:
                raise AssertionError(f"{binary} exited with {self.process.returncode}: "
                                     f"{self.process.stderr.read().decode(errors='replace')}")
        except BaseException:
            self.stop()
            raise

    def _accepts(self):
        if not os.path.exists(self.path):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.path)
                return True
            except (ConnectionRefusedError, FileNotFoundError):
                return False

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        self.process.stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)
