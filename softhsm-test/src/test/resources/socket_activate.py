#!/usr/bin/env python3
"""A stand-in for systemd's socket activation and readiness protocol, for tests.

    socket_activate.py --socket PATH --notify PATH --stdout FILE --stderr FILE -- CMD [ARG...]

Like a .socket unit with Accept=no and a Type=notify service with StandardInput=socket:
it binds and listens on PATH (mode 0660) and keeps it open for its whole life, then
starts CMD with that listening socket as standard input and NOTIFY_SOCKET=<notify PATH>,
as often as it is told to. Connections made while no CMD runs wait in the backlog.

Commands, one per line on standard input: "start" starts CMD (when none runs);
"quit" (or end of input) kills a running CMD and exits.
Events, one JSON object per line on standard output:
    {"event": "listening"}
    {"event": "started", "pid": N}
    {"event": "notify", "message": "READY=1\\nSTATUS=..."}
    {"event": "exited", "pid": N, "status": S}   S < 0: killed by signal -S
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading

lock = threading.Lock()


def emit(**event):
    with lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--notify", required=True)
    ap.add_argument("--stdout", required=True)
    ap.add_argument("--stderr", required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    if not cmd:
        ap.error("no command")

    os.makedirs(os.path.dirname(a.socket), exist_ok=True)
    for p in (a.socket, a.notify):
        if os.path.exists(p):
            os.unlink(p)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(a.socket)
    os.chmod(a.socket, 0o660)
    listener.listen(128)
    listener.set_inheritable(True)

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(a.notify)
    os.chmod(a.notify, 0o777)  # as systemd's: a daemon running as another user must be able to send

    def read_notifications():
        while True:
            try:
                data = notify.recv(65536)
            except OSError:
                return
            emit(event="notify", message=data.decode("utf-8", "replace"))

    threading.Thread(target=read_notifications, daemon=True).start()
    emit(event="listening")

    child = None

    def wait_for(proc):
        status = proc.wait()
        emit(event="exited", pid=proc.pid, status=status)

    env = dict(os.environ, NOTIFY_SOCKET=a.notify)
    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            if child is not None and child.poll() is None:
                emit(event="error", message="already running")
                continue
            with open(a.stdout, "ab") as out, open(a.stderr, "ab") as err:
                # systemd starts a service with every signal at its default action; a test run
                # under nohup would otherwise pass SIGHUP on as ignored, and the JVM honours that.
                child = subprocess.Popen(cmd, stdin=listener.fileno(), stdout=out, stderr=err, env=env,
                                         close_fds=True,
                                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
            emit(event="started", pid=child.pid)
            threading.Thread(target=wait_for, args=(child,), daemon=True).start()
        elif command == "quit":
            break
        elif command:
            emit(event="error", message="unknown command " + command)
    if child is not None and child.poll() is None:
        child.kill()
        child.wait()


if __name__ == "__main__":
    main()
