"""Python client for the enclave-kms daemon, standard library only (Python >= 3.9).

enclave-kms serves local clients over varlink: JSON objects, each terminated by one
NUL byte, on an AF_UNIX stream socket. This module has two layers:

* :class:`VarlinkConnection` -- a generic varlink client connection (framing,
  reply limits, error replies, ``more`` and ``oneway`` calls, thread safety);
* :class:`KmsClient` -- one Python method per method of the ``dev.enclavekms.Kms``
  and ``dev.enclavekms.Admin`` interfaces (plus ``org.varlink.service``). Binary
  values go in and come out as :class:`bytes`; the base64 of the wire is done here.

Errors: every varlink error reply raises :class:`VarlinkError`. Errors of the
daemon's own interfaces (``dev.enclavekms.*``) raise the subclass of
:class:`KmsError` named like the error (``dev.enclavekms.Kms.KeyNotFound`` ->
:class:`KeyNotFound`); any other error name raises a plain :class:`VarlinkError`.
A peer that breaks the protocol raises :class:`ProtocolError` (a
:class:`ConnectionError`), and the connection is closed, because after a broken
frame, a timeout or an abandoned stream nobody knows which reply comes next.

Secrets: plaintext data keys and decrypted plaintexts come back as ``bytes``, which
Python cannot wipe. They are kept out of the ``repr`` of the result objects so that
logging a result does not log a key.

The module is also a small command-line tool, used by the system tests to check the
Java daemon from Python::

    python3 enclave_kms.py [--socket PATH] status
    python3 enclave_kms.py [--socket PATH] generate-data-key KEY [--context K=V]... [--bytes N]
    python3 enclave_kms.py [--socket PATH] decrypt CIPHERTEXT_B64 [--context K=V]...
    python3 enclave_kms.py [--socket PATH] decrypt-shard SHARD OUT [--context K=V]...

Shard files (docs/formats.md, "Shard files, format 1") are decrypted by
:class:`ShardReader` (random access) and :func:`decrypt_shard` (streaming); they need the
``cryptography`` package, imported only when a shard is decrypted, and raise
:class:`MissingDependency` without it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

__all__ = [
    "DEFAULT_SOCKET", "SOCKET_ENV", "DEFAULT_MAX_REPLY_BYTES",
    "KMS_INTERFACE", "ADMIN_INTERFACE", "SERVICE_INTERFACE",
    "VarlinkConnection", "VarlinkError", "ProtocolError", "ReplyTooLarge",
    "KmsError", "KeyNotFound", "KeyVersionNotFound", "InvalidParameter",
    "PermissionDenied", "DecryptionFailed", "InvalidKeyUsage", "KeyVersionUnusable",
    "EnclaveUnavailable", "InternalError", "InvalidRequest", "RequestTooLarge",
    "TooManyConnections", "KeyAlreadyExists", "KeyVersionDestroyed", "InvalidStateTransition",
    "AuditUnavailable", "PolicyInvalid", "CertificateRefused", "CertificateNotFound",
    "error_from_reply",
    "KmsClient", "DataKey", "Encrypted", "Decrypted", "DecryptResult", "Signature",
    "PublicKey", "PublicKeys", "VersionPublicKey", "ReEncrypted", "ReEncryptResult", "main",
    "ShardHeader", "ShardReader", "ShardError", "MissingDependency", "decrypt_shard", "read_shard_header",
    "encode_context",
]

#: Where the daemon listens on a host installed with the systemd units.
DEFAULT_SOCKET = "/run/enclave-kms/kms.sock"
#: Environment variable naming the daemon's socket; overrides DEFAULT_SOCKET.
SOCKET_ENV = "ENCLAVE_KMS_SOCKET"
#: Largest reply accepted by default. A DecryptBatch of 10,000 data keys is about
#: 1.5 MB, so this leaves room while still bounding what a peer can make us buffer.
DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024

KMS_INTERFACE = "dev.enclavekms.Kms"
ADMIN_INTERFACE = "dev.enclavekms.Admin"
SERVICE_INTERFACE = "org.varlink.service"

_KMS_ERROR_PREFIX = "dev.enclavekms."
_RECV_CHUNK = 64 * 1024


# --------------------------------------------------------------------------- errors

class VarlinkError(Exception):
    """An error reply from the varlink peer.

    Attributes:
        error: the fully qualified error name, e.g. ``dev.enclavekms.Kms.KeyNotFound``.
        parameters: the error's parameters (a dict, empty when the reply had none).
    """

    def __init__(self, error: str, parameters: Optional[Mapping[str, Any]] = None):
        params = dict(parameters) if parameters else {}
        # args = (error, parameters) keeps the exception picklable.
        super().__init__(error, params)
        self.error = error
        self.parameters = params

    @property
    def message(self) -> str:
        """The error's human-readable ``message`` parameter, or the error name."""
        m = self.parameters.get("message")
        return m if isinstance(m, str) else self.error

    def __str__(self) -> str:
        m = self.parameters.get("message")
        if isinstance(m, str):
            return f"{self.error}: {m}"
        if self.parameters:
            return f"{self.error} {json.dumps(self.parameters, sort_keys=True)}"
        return self.error


class KmsError(VarlinkError):
    """An error of one of the daemon's own interfaces (``dev.enclavekms.*``)."""


class InvalidParameter(KmsError):
    """A parameter is missing, has the wrong type, or a value out of range
    (``parameters['parameter']`` names it)."""


class KeyNotFound(KmsError):
    """No such key, or the caller may not know of it."""


class KeyVersionNotFound(KmsError):
    """The key exists but has no such version."""


class InvalidKeyUsage(KmsError):
    """The key's purpose or algorithm does not allow this operation."""


class KeyVersionUnusable(KmsError):
    """The key version's state (``parameters['state']``) does not allow this operation."""


class PermissionDenied(KmsError):
    """The caller is not allowed to make this call."""


class DecryptionFailed(KmsError):
    """The ciphertext is malformed, was tampered with, or the context differs."""


class EnclaveUnavailable(KmsError):
    """The hardware (HSM or card) could not be used."""


class InternalError(KmsError):
    """Something failed inside the daemon; its log says what."""


class InvalidRequest(KmsError):
    """The daemon could not read the call (malformed JSON, invalid UTF-8, no method)."""


class RequestTooLarge(KmsError):
    """The call exceeded the daemon's size limit (``parameters['limit']``)."""


class TooManyConnections(KmsError):
    """The daemon serves its maximum number of connections."""


class KeyAlreadyExists(KmsError):
    """CreateKey: a key of that name exists."""


class KeyVersionDestroyed(KmsError):
    """The key version was destroyed (``parameters['destroyed']``, RFC 3339): what it
    protected can never be decrypted or verified again. Unlike
    :class:`KeyVersionUnusable`, no state change undoes this; do not retry."""


class InvalidStateTransition(KmsError):
    """An Admin lifecycle change the version's current state (``parameters['state']``)
    does not allow, e.g. enabling a REVOKED version. Nothing was changed."""


class AuditUnavailable(KmsError):
    """The daemon's audit log cannot record the call, so the daemon refused it (it
    fails closed); the message says why. Nothing was released; retry later."""


class PolicyInvalid(KmsError):
    """Admin.ReloadPolicy: the policy file cannot be used; ``parameters['problems']``
    lists each problem with its line. The policy in force stays."""


class SessionNotFound(KmsError):
    """No such session, or it ended (closed, expired, revoked), or it is another
    tenant's: the daemon does not distinguish them."""


class SessionMaterialNotFound(KmsError):
    """The session has no final blob of that name."""


class SessionLimitExceeded(KmsError):
    """A session limit (size, blobs, sessions per tenant) would be exceeded."""


class CertificateRefused(KmsError):
    """IssueCertificate refused the request; ``parameters['reason']`` says why (BAD_CSR,
    BAD_SIGNATURE, WEAK_KEY, TTL_TOO_LONG, SAN_NOT_ALLOWED, BAD_PROFILE,
    CA_CERTIFICATE_MISSING)."""


class CertificateNotFound(KmsError):
    """RevokeCertificate: no certificate of that serial was issued by a CA key the caller
    may manage (never issued, or another tenant's)."""


_KMS_ERRORS = {cls.__name__: cls for cls in (
    InvalidParameter, KeyNotFound, KeyVersionNotFound, InvalidKeyUsage,
    KeyVersionUnusable, PermissionDenied, DecryptionFailed, EnclaveUnavailable,
    InternalError, InvalidRequest, RequestTooLarge, TooManyConnections,
    KeyAlreadyExists, KeyVersionDestroyed, InvalidStateTransition, AuditUnavailable,
    PolicyInvalid, SessionNotFound, SessionMaterialNotFound, SessionLimitExceeded, CertificateRefused,
    CertificateNotFound,
)}


def error_from_reply(error: str, parameters: Optional[Mapping[str, Any]] = None) -> VarlinkError:
    """Builds the exception for an error reply: the :class:`KmsError` subclass named
    by the error's short name when the error belongs to a ``dev.enclavekms.*``
    interface, else a plain :class:`VarlinkError`."""
    interface, _, short = error.rpartition(".")
    cls = None
    if (interface + ".").startswith(_KMS_ERROR_PREFIX):
        cls = _KMS_ERRORS.get(short)
    return (cls or VarlinkError)(error, parameters)


class ProtocolError(ConnectionError):
    """The peer broke the varlink protocol (bad UTF-8, bad JSON, a reply that is not
    a varlink reply, the connection closed mid-call). The connection is closed."""


class ReplyTooLarge(ProtocolError):
    """A reply exceeded the connection's ``max_reply_bytes``. The connection is closed."""

    def __init__(self, limit: int):
        super().__init__(f"reply exceeds the limit of {limit} bytes")
        self.limit = limit


# ----------------------------------------------------------------------- connection

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object_without_duplicates(pairs: List[tuple]) -> Dict[str, Any]:
    obj: Dict[str, Any] = {}
    for k, v in pairs:
        if k in obj:
            # Two "error" keys could be read differently by two parsers.
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _encode_message(message: Mapping[str, Any]) -> bytes:
    # ensure_ascii=False + strict encode: a str with a lone surrogate cannot be
    # encoded as UTF-8 and fails here, before anything is sent.
    text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\0"


def _socket_address(address: str) -> str:
    """``/path``, ``unix:/path[;mode=...]`` or ``@abstract`` -> an AF_UNIX address."""
    if address.startswith("unix:"):
        address = address[len("unix:"):].split(";", 1)[0]
    if address.startswith("@"):
        return "\0" + address[1:]
    return address


class VarlinkConnection:
    """One varlink connection over an AF_UNIX stream socket.

    Calls on one connection are serialised by a lock (varlink answers in order);
    open one connection per thread for parallelism. After a protocol error, a
    timeout or a ``more`` stream abandoned half-read the connection is closed, and
    further calls raise :class:`ProtocolError`.

    Usable as a context manager::

        with VarlinkConnection("/run/enclave-kms/kms.sock") as c:
            info = c.call("org.varlink.service.GetInfo")
    """

    def __init__(self, address: str, *, timeout: Optional[float] = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES):
        """Connects to ``address``: a socket path, ``unix:PATH`` or ``@abstract-name``.

        Args:
            timeout: seconds allowed for connecting and for each send or receive;
                None waits forever. A timeout raises :class:`TimeoutError`.
            max_reply_bytes: largest reply accepted (without its NUL terminator).

        Raises:
            OSError: the socket cannot be reached (the error names the path).
        """
        if max_reply_bytes < 1:
            raise ValueError("max_reply_bytes must be positive")
        self.address = address
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes
        self._lock = threading.Lock()
        self._owner: Optional[int] = None  # thread reading a `more` stream
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already searched for a NUL
        self._closed = False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(_socket_address(address))
        except socket.timeout as e:
            sock.close()
            raise TimeoutError(f"cannot connect to {address}: timed out") from e
        except OSError as e:
            sock.close()
            if e.errno is None:
                raise
            raise OSError(e.errno, f"cannot connect to varlink socket: {e.strerror}", address) from e
        self._sock = sock

    # -- public API

    def call(self, method: str, parameters: Optional[Mapping[str, Any]] = None,
             more: bool = False, oneway: bool = False) -> Any:
        """Calls ``method`` (fully qualified, e.g. ``org.varlink.service.GetInfo``).

        Args:
            parameters: the call's parameters; None or empty sends none.
            more: ask for several replies. Then a generator is returned that yields
                each reply's parameters; the call is sent when iteration starts and
                the connection stays busy until the generator is exhausted or closed
                (closing it early closes the connection).
            oneway: ask for no reply; returns None once the call is sent.

        Returns:
            the reply's parameters (a dict, empty when the reply had none), or a
            generator of them with ``more``, or None with ``oneway``.

        Raises:
            VarlinkError: the peer replied with an error (a :class:`KmsError`
                subclass for ``dev.enclavekms.*`` errors).
            ProtocolError: the peer broke the protocol; the connection is closed.
            TimeoutError: no reply within ``timeout``; the connection is closed.
            RuntimeError: this thread is still reading a ``more`` stream here.
        """
        if not isinstance(method, str) or "." not in method:
            raise ValueError(f"not a fully qualified varlink method name: {method!r}")
        if more and oneway:
            raise ValueError("a call cannot be both 'more' and 'oneway'")
        message: Dict[str, Any] = {"method": method}
        if parameters:
            message["parameters"] = dict(parameters)
        if more:
            message["more"] = True
            return self._stream(message)
        if oneway:
            message["oneway"] = True
        frame = _encode_message(message)
        self._check_not_streaming()
        with self._lock:
            self._send(frame)
            if oneway:
                return None
            params, continues = self._receive()
            if continues:
                self._abort()
                raise ProtocolError("'continues' reply to a call without 'more'")
            return params

    def close(self) -> None:
        """Closes the connection; a call blocked in another thread fails."""
        self._abort()

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by :meth:`close` or after an error)."""
        return self._closed

    def __enter__(self) -> "VarlinkConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<VarlinkConnection {self.address!r} {state}>"

    # -- internals

    def _check_not_streaming(self) -> None:
        if self._owner == threading.get_ident():
            raise RuntimeError("this thread is still reading a 'more' reply stream on this connection")

    def _stream(self, message: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        frame = _encode_message(message)  # fail on bad parameters before iterating
        return self._replies(frame)

    def _replies(self, frame: bytes) -> Iterator[Dict[str, Any]]:
        self._check_not_streaming()
        with self._lock:
            self._owner = threading.get_ident()
            done = False
            try:
                self._send(frame)
                while True:
                    try:
                        params, continues = self._receive()
                    except VarlinkError:
                        done = True  # an error reply ends the call; the connection is fine
                        raise
                    if not continues:
                        done = True
                        yield params
                        return
                    yield params
            finally:
                self._owner = None
                if not done:
                    # Abandoned mid-stream (or broken): the unread replies would be
                    # taken for the answers to the next call.
                    self._abort()

    def _send(self, frame: bytes) -> None:
        if self._closed:
            raise ProtocolError(f"connection to {self.address} is closed")
        try:
            self._sock.sendall(frame)
        except socket.timeout as e:
            self._abort()
            raise TimeoutError(f"sending to {self.address} timed out") from e
        except OSError:
            self._abort()
            raise

    def _receive(self) -> tuple:
        """Reads one reply: (parameters, continues), or raises its VarlinkError."""
        raw = self._read_frame()
        try:
            text = raw.decode("utf-8")  # strict: invalid UTF-8 is an error, not U+FFFD
            reply = json.loads(text, object_pairs_hook=_object_without_duplicates,
                               parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            self._abort()
            raise ProtocolError(f"malformed reply from {self.address}: {e}") from None
        if not isinstance(reply, dict):
            self._abort()
            raise ProtocolError("a varlink reply must be a JSON object")
        params = reply.get("parameters")
        error = reply.get("error")
        continues = reply.get("continues", False)
        if params is None:
            params = {}  # systemd omits empty parameters; accept missing, null or {}
        if (not isinstance(params, dict) or not isinstance(continues, bool)
                or not (error is None or isinstance(error, str))):
            self._abort()
            raise ProtocolError("malformed varlink reply: wrong type of 'parameters', 'error' or 'continues'")
        if error is not None:
            raise error_from_reply(error, params)
        return params, continues

    def _read_frame(self) -> bytes:
        buf = self._buffer
        while True:
            nul = buf.find(b"\0", self._scanned)
            if nul >= 0:
                if nul > self.max_reply_bytes:
                    self._abort()
                    raise ReplyTooLarge(self.max_reply_bytes)
                frame = bytes(buf[:nul])
                del buf[:nul + 1]
                self._scanned = 0
                return frame
            self._scanned = len(buf)
            if len(buf) > self.max_reply_bytes:
                # Stop reading: never buffer more than the limit for one reply.
                self._abort()
                raise ReplyTooLarge(self.max_reply_bytes)
            if self._closed:
                raise ProtocolError(f"connection to {self.address} is closed")
            try:
                chunk = self._sock.recv(_RECV_CHUNK)
            except socket.timeout as e:
                self._abort()
                raise TimeoutError(f"no reply from {self.address} within {self.timeout} s") from e
            except OSError:
                self._abort()
                raise
            if not chunk:
                partial = len(buf) > 0
                self._abort()
                raise ProtocolError(
                    f"connection closed by {self.address}"
                    + (" inside a reply (no NUL terminator)" if partial else ""))
            buf += chunk

    def _abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        sock = getattr(self, "_sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
            except OSError:
                pass  # already disconnected: nothing to wake
            sock.close()


# -------------------------------------------------------------------- result types

@dataclass(frozen=True)
class DataKey:
    """A data key: use ``plaintext``, store ``ciphertext`` (the key wrapped under
    ``key`` version ``version``), forget ``plaintext``."""
    key: str
    version: int
    plaintext: bytes = field(repr=False)
    ciphertext: bytes


@dataclass(frozen=True)
class Encrypted:
    """Result of :meth:`KmsClient.encrypt`: the ciphertext envelope."""
    key: str
    version: int
    ciphertext: bytes


@dataclass(frozen=True)
class Decrypted:
    """Result of :meth:`KmsClient.decrypt`: the plaintext and the key version it was under."""
    key: str
    version: int
    plaintext: bytes = field(repr=False)


@dataclass(frozen=True)
class DecryptResult:
    """One entry of :meth:`KmsClient.decrypt_batch`: either ``plaintext`` (with
    ``key`` and ``version``) or ``error`` (a short name such as
    ``"DecryptionFailed"``) and ``message``."""
    plaintext: Optional[bytes] = field(default=None, repr=False)
    key: Optional[str] = None
    version: Optional[int] = None
    error: Optional[str] = None
    message: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True when this entry was decrypted."""
        return self.error is None and self.plaintext is not None


@dataclass(frozen=True)
class Signature:
    """Result of :meth:`KmsClient.sign`. ECDSA signatures are DER, Ed25519 64 bytes."""
    key: str
    version: int
    algorithm: str
    signature: bytes


@dataclass(frozen=True)
class PublicKey:
    """Result of :meth:`KmsClient.get_public_key`: SubjectPublicKeyInfo as PEM."""
    key: str
    version: int
    algorithm: str
    pem: str


@dataclass(frozen=True)
class VersionPublicKey:
    """One verifiable version in :class:`PublicKeys`: ``state`` is ``ENABLED`` or
    ``PENDING``; ``primary`` marks the version that signs now."""
    version: int
    state: str
    primary: bool
    pem: str


@dataclass(frozen=True)
class PublicKeys:
    """Result of :meth:`KmsClient.get_public_keys`: every verifiable version's public key."""
    key: str
    algorithm: str
    versions: List[VersionPublicKey]


@dataclass(frozen=True)
class ReEncrypted:
    """Result of :meth:`KmsClient.re_encrypt`: the envelope now under ``key`` version
    ``version`` (the target's primary). ``rewrapped`` is False when the envelope was
    already there and comes back unchanged (nothing to store)."""
    key: str
    version: int
    source_key: str
    source_version: int
    rewrapped: bool
    ciphertext: bytes


@dataclass(frozen=True)
class ReEncryptResult:
    """One entry of :meth:`KmsClient.re_encrypt_batch`: either the fields of
    :class:`ReEncrypted`, or ``error`` (a short name such as ``"DecryptionFailed"``)
    and ``message``, with whatever key and version fields the daemon named."""
    key: Optional[str] = None
    version: Optional[int] = None
    source_key: Optional[str] = None
    source_version: Optional[int] = None
    rewrapped: Optional[bool] = None
    ciphertext: Optional[bytes] = None
    error: Optional[str] = None
    message: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True when this entry was re-encrypted (or was already current)."""
        return self.error is None and self.ciphertext is not None


# ------------------------------------------------------------------ encoding helpers

def _b64(name: str, value: Any) -> str:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    return base64.b64encode(value).decode("ascii")


def _unb64(name: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(f"reply field {name!r} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"reply field {name!r} is not valid base64") from None


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _context(value: Any) -> Dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"context must be a mapping of str to str, not {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError("context must be a mapping of str to str")
    return dict(value)


def _field(reply: Mapping[str, Any], name: str, kind: type) -> Any:
    value = reply.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"reply field {name!r} is missing or not a {kind.__name__}")
    return value


def _optional(params: Dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        params[name] = value


# ------------------------------------------------------------------------- client

class KmsClient:
    """Client of the enclave-kms daemon: one method per varlink method.

    The socket is ``socket_path`` if given, else ``$ENCLAVE_KMS_SOCKET``, else
    ``/run/enclave-kms/kms.sock``. The client connects on its first call and keeps
    one connection; calls from several threads are serialised on it (use one
    client per thread for parallelism). If the connection was closed by an error,
    the next call opens a new one; a failed call is never retried.

    Binary parameters are ``bytes`` (or ``bytearray``/``memoryview``) and binary
    results are ``bytes``. Optional parameters left at None are not sent. Results
    are the dataclasses of this module for data-plane methods; the admin and
    service methods return the reply's JSON as dicts (documented per method),
    so that fields the daemon adds later are not lost.
    """

    def __init__(self, socket_path: Optional[str] = None, *, timeout: Optional[float] = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES):
        """Args:
            socket_path: the daemon's socket (see the class doc for the default).
            timeout: seconds for connecting and for each send/receive; None: no limit.
            max_reply_bytes: largest reply accepted.
        """
        self.socket_path = socket_path or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes
        self._connection: Optional[VarlinkConnection] = None
        self._connect_lock = threading.Lock()

    def _conn(self) -> VarlinkConnection:
        with self._connect_lock:
            if self._connection is None or self._connection.closed:
                self._connection = VarlinkConnection(
                    self.socket_path, timeout=self.timeout, max_reply_bytes=self.max_reply_bytes)
            return self._connection

    def call(self, method: str, parameters: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Calls any varlink method on the daemon and returns the reply's parameters
        as a dict (for methods this class does not wrap yet)."""
        return self._conn().call(method, parameters)

    def close(self) -> None:
        """Closes the connection (the next call would open a new one)."""
        with self._connect_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> "KmsClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<KmsClient {self.socket_path!r}>"

    # -- dev.enclavekms.Kms

    def generate_data_key(self, key: str, context: Optional[Mapping[str, str]] = None,
                          bytes: Optional[int] = None) -> DataKey:  # noqa: A002 (the wire name)
        """GenerateDataKey: a fresh random data key (default 32 bytes), in the clear
        and wrapped under the primary version of ``key``, bound to ``context``.

        Returns: :class:`DataKey`.
        """
        params: Dict[str, Any] = {"key": _str("key", key)}
        _optional(params, "context", None if context is None else _context(context))
        _optional(params, "bytes", None if bytes is None else _int("bytes", bytes))
        r = self.call(f"{KMS_INTERFACE}.GenerateDataKey", params)
        return DataKey(_field(r, "key", str), _field(r, "version", int),
                       _unb64("plaintext", r.get("plaintext")), _unb64("ciphertext", r.get("ciphertext")))

    def generate_data_keys(self, key: str, count: int, context: Optional[Mapping[str, str]] = None,
                           bytes: Optional[int] = None) -> List[DataKey]:  # noqa: A002
        """GenerateDataKeys: ``count`` (at most 10,000) data keys under one key
        version and context.

        Returns: a list of :class:`DataKey`, each carrying the batch's key and version.
        """
        params: Dict[str, Any] = {"key": _str("key", key), "count": _int("count", count)}
        _optional(params, "context", None if context is None else _context(context))
        _optional(params, "bytes", None if bytes is None else _int("bytes", bytes))
        r = self.call(f"{KMS_INTERFACE}.GenerateDataKeys", params)
        name, version = _field(r, "key", str), _field(r, "version", int)
        keys = []
        for entry in _field(r, "keys", list):
            if not isinstance(entry, dict):
                raise ProtocolError("reply field 'keys' holds a non-object")
            keys.append(DataKey(name, version, _unb64("plaintext", entry.get("plaintext")),
                                _unb64("ciphertext", entry.get("ciphertext"))))
        return keys

    def encrypt(self, key: str, plaintext: bytes, context: Optional[Mapping[str, str]] = None) -> Encrypted:
        """Encrypt: seals a small secret (at most 65,536 bytes) under the primary
        version of ``key``, bound to ``context``.

        Returns: :class:`Encrypted`.
        """
        params: Dict[str, Any] = {"key": _str("key", key), "plaintext": _b64("plaintext", plaintext)}
        _optional(params, "context", None if context is None else _context(context))
        r = self.call(f"{KMS_INTERFACE}.Encrypt", params)
        return Encrypted(_field(r, "key", str), _field(r, "version", int),
                         _unb64("ciphertext", r.get("ciphertext")))

    def decrypt(self, ciphertext: bytes, context: Optional[Mapping[str, str]] = None) -> Decrypted:
        """Decrypt: opens a ciphertext envelope (it names its key and version); the
        context must equal the one it was made with.

        Returns: :class:`Decrypted`. Raises :class:`DecryptionFailed` for a bad
        ciphertext or a different context.
        """
        params: Dict[str, Any] = {"ciphertext": _b64("ciphertext", ciphertext)}
        _optional(params, "context", None if context is None else _context(context))
        r = self.call(f"{KMS_INTERFACE}.Decrypt", params)
        return Decrypted(_field(r, "key", str), _field(r, "version", int),
                         _unb64("plaintext", r.get("plaintext")))

    def decrypt_batch(self, ciphertexts: Sequence[bytes],
                      context: Optional[Mapping[str, str]] = None) -> List[DecryptResult]:
        """DecryptBatch: decrypts up to 10,000 envelopes with one context. A failed
        entry does not fail the batch.

        Returns: a list of :class:`DecryptResult`, one per ciphertext, in order.
        """
        if isinstance(ciphertexts, (bytes, bytearray, memoryview, str)):
            raise TypeError("ciphertexts must be a sequence of bytes, not a single value")
        params: Dict[str, Any] = {"ciphertexts": [_b64("ciphertexts[]", c) for c in ciphertexts]}
        _optional(params, "context", None if context is None else _context(context))
        r = self.call(f"{KMS_INTERFACE}.DecryptBatch", params)
        results = []
        for entry in _field(r, "results", list):
            if not isinstance(entry, dict):
                raise ProtocolError("reply field 'results' holds a non-object")
            pt = entry.get("plaintext")
            results.append(DecryptResult(
                plaintext=None if pt is None else _unb64("plaintext", pt),
                key=entry.get("key"), version=entry.get("version"),
                error=entry.get("error"), message=entry.get("message")))
        return results

    def sign(self, key: str, message: Optional[bytes] = None, digest: Optional[bytes] = None) -> Signature:
        """Sign: signs ``message``, or a ``digest`` computed by the caller (not for
        Ed25519), with the primary version of ``key``. Give exactly one of them.

        Returns: :class:`Signature`.
        """
        params: Dict[str, Any] = {"key": _str("key", key)}
        self._message_or_digest(params, message, digest)
        r = self.call(f"{KMS_INTERFACE}.Sign", params)
        return Signature(_field(r, "key", str), _field(r, "version", int), _field(r, "algorithm", str),
                         _unb64("signature", r.get("signature")))

    def verify(self, key: str, version: int, signature: bytes, message: Optional[bytes] = None,
               digest: Optional[bytes] = None) -> bool:
        """Verify: checks a ``signature`` made by ``version`` of ``key`` over
        ``message`` or ``digest`` (exactly one).

        Returns: True if the signature is valid, False if not.
        """
        params: Dict[str, Any] = {"key": _str("key", key), "version": _int("version", version),
                                  "signature": _b64("signature", signature)}
        self._message_or_digest(params, message, digest)
        r = self.call(f"{KMS_INTERFACE}.Verify", params)
        return _field(r, "valid", bool)

    @staticmethod
    def _message_or_digest(params: Dict[str, Any], message: Optional[bytes], digest: Optional[bytes]) -> None:
        if (message is None) == (digest is None):
            raise ValueError("give exactly one of message and digest")
        if message is not None:
            params["message"] = _b64("message", message)
        else:
            params["digest"] = _b64("digest", digest)

    def get_public_key(self, key: str, version: Optional[int] = None) -> PublicKey:
        """GetPublicKey: the public key of a signing key version (default: the primary).

        Returns: :class:`PublicKey` (PEM SubjectPublicKeyInfo).
        """
        params: Dict[str, Any] = {"key": _str("key", key)}
        _optional(params, "version", None if version is None else _int("version", version))
        r = self.call(f"{KMS_INTERFACE}.GetPublicKey", params)
        return PublicKey(_field(r, "key", str), _field(r, "version", int), _field(r, "algorithm", str),
                         _field(r, "pem", str))

    def get_public_keys(self, key: str) -> PublicKeys:
        """GetPublicKeys: the public keys of every verifiable version (ENABLED or
        PENDING) of a signing key, so verifiers accept signatures of older versions
        and learn a PENDING one before its first signature.

        Returns: :class:`PublicKeys`.
        """
        r = self.call(f"{KMS_INTERFACE}.GetPublicKeys", {"key": _str("key", key)})
        versions = []
        for entry in _field(r, "versions", list):
            if not isinstance(entry, dict):
                raise ProtocolError("reply field 'versions' holds a non-object")
            versions.append(VersionPublicKey(_field(entry, "version", int), _field(entry, "state", str),
                                             _field(entry, "primary", bool), _field(entry, "pem", str)))
        return PublicKeys(_field(r, "key", str), _field(r, "algorithm", str), versions)

    def re_encrypt(self, ciphertext: bytes, context: Optional[Mapping[str, str]] = None,
                   key: Optional[str] = None, new_context: Optional[Mapping[str, str]] = None) -> ReEncrypted:
        """ReEncrypt: moves an envelope to the primary version of its key, or of
        ``key``, inside the daemon (the plaintext never leaves it), bound to
        ``new_context`` if given, else to ``context`` again.

        Returns: :class:`ReEncrypted` (``rewrapped`` False when it was already current).
        Raises :class:`KeyVersionDestroyed` when the source version was destroyed.
        """
        params: Dict[str, Any] = {"ciphertext": _b64("ciphertext", ciphertext)}
        _optional(params, "context", None if context is None else _context(context))
        _optional(params, "key", None if key is None else _str("key", key))
        _optional(params, "new_context", None if new_context is None else _context(new_context))
        r = self.call(f"{KMS_INTERFACE}.ReEncrypt", params)
        return ReEncrypted(_field(r, "key", str), _field(r, "version", int), _field(r, "source_key", str),
                           _field(r, "source_version", int), _field(r, "rewrapped", bool),
                           _unb64("ciphertext", r.get("ciphertext")))

    def re_encrypt_batch(self, ciphertexts: Sequence[bytes], context: Optional[Mapping[str, str]] = None,
                         key: Optional[str] = None) -> List[ReEncryptResult]:
        """ReEncryptBatch: :meth:`re_encrypt` for up to 10,000 envelopes with one
        context and one target. A failed entry does not fail the batch.

        Returns: a list of :class:`ReEncryptResult`, one per ciphertext, in order.
        """
        if isinstance(ciphertexts, (bytes, bytearray, memoryview, str)):
            raise TypeError("ciphertexts must be a sequence of bytes, not a single value")
        params: Dict[str, Any] = {"ciphertexts": [_b64("ciphertexts[]", c) for c in ciphertexts]}
        _optional(params, "context", None if context is None else _context(context))
        _optional(params, "key", None if key is None else _str("key", key))
        r = self.call(f"{KMS_INTERFACE}.ReEncryptBatch", params)
        entries = _field(r, "results", list)
        if len(entries) != len(params["ciphertexts"]):
            raise ProtocolError(f"ReEncryptBatch answered {len(entries)} results for "
                                f"{len(params['ciphertexts'])} ciphertexts")
        results = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise ProtocolError("reply field 'results' holds a non-object")
            ct = entry.get("ciphertext")
            results.append(ReEncryptResult(
                key=entry.get("key"), version=entry.get("version"), source_key=entry.get("source_key"),
                source_version=entry.get("source_version"), rewrapped=entry.get("rewrapped"),
                ciphertext=None if ct is None else _unb64("ciphertext", ct),
                error=entry.get("error"), message=entry.get("message")))
        return results

    def status(self) -> Dict[str, Any]:
        """Status: the daemon's health.

        Returns: a dict as on the wire: ``version``, ``uptime_seconds``, ``enclave``
        (a dict: ``kind``, ``label``, ``manufacturer``, ``model``, ``serial``),
        ``keys``, ``key_versions``, ``orphans``, ``missing``.
        """
        return self.call(f"{KMS_INTERFACE}.Status")

    # -- ephemeral key sessions (docs/sessions.md)

    #: Largest chunk PutSessionMaterial accepts (decoded).
    MAX_SESSION_CHUNK = 1024 * 1024

    def open_session(self, ttl_seconds: Optional[int] = None) -> Dict[str, Any]:
        """OpenSession: a session of the caller's tenant.

        Returns: a dict as on the wire: ``session``, ``tenant``, ``expires``, ``ttl_seconds``.
        """
        params: Dict[str, Any] = {}
        _optional(params, "ttl_seconds", ttl_seconds)
        return self.call(f"{KMS_INTERFACE}.OpenSession", params)

    def put_session_material(self, session: str, name: str, data: bytes, offset: int,
                             final: bool = False) -> int:
        """PutSessionMaterial: appends one chunk (at most 1 MiB) at ``offset`` (the blob's
        size so far); ``final`` seals the blob. Returns the blob's size after the chunk."""
        reply = self.call(f"{KMS_INTERFACE}.PutSessionMaterial", {
            "session": session, "name": name, "data": _b64("data", data), "offset": offset,
            "final": bool(final)})
        return _int("size", reply.get("size"))

    def put_session_blob(self, session: str, name: str, stream: Any) -> int:
        """Uploads a whole binary stream (``read(n)``) as blob ``name`` in 1 MiB chunks and
        seals it. Returns its size."""
        offset = 0
        chunk = stream.read(self.MAX_SESSION_CHUNK)
        while True:
            nxt = stream.read(self.MAX_SESSION_CHUNK) if len(chunk) == self.MAX_SESSION_CHUNK else b""
            offset = self.put_session_material(session, name, chunk, offset, final=not nxt)
            if not nxt:
                return offset
            chunk = nxt

    def get_session_material(self, session: str, name: str) -> Iterator[bytes]:
        """GetSessionMaterial: yields the final blob's chunks in order (a ``more`` call),
        checking that they are contiguous and complete. Read the generator to the end."""
        expected = 0
        size = None
        for reply in self._conn().call(f"{KMS_INTERFACE}.GetSessionMaterial",
                                       {"session": session, "name": name}, more=True):
            if _int("offset", reply.get("offset")) != expected:
                raise ProtocolError(f"GetSessionMaterial: chunk at offset {reply.get('offset')}, expected {expected}")
            data = _unb64("data", reply.get("data"))
            expected += len(data)
            size = _int("size", reply.get("size"))
            yield data
        if size is None or expected != size:
            raise ProtocolError(f"GetSessionMaterial: got {expected} of {size} bytes")

    def close_session(self, session: str) -> None:
        """CloseSession: ends the session; its key is destroyed, then its material."""
        self.call(f"{KMS_INTERFACE}.CloseSession", {"session": session})

    def revoke_sessions(self, tenant: str) -> int:
        """Admin.RevokeSessions: ends every session of ``tenant``; returns how many."""
        return _int("revoked", self.call(f"{ADMIN_INTERFACE}.RevokeSessions", {"tenant": tenant}).get("revoked"))

    def get_ca_certificates(self, key: str) -> Dict[str, Any]:
        """GetCaCertificates: the certificate of every version of a CERT_AUTHORITY key a
        relying party should trust.

        Returns: a dict with ``key``, ``algorithm``, ``certificates`` (one dict per
        version) and ``pem`` (all of them concatenated: the CA file for a TLS peer).
        """
        return self.call(f"{KMS_INTERFACE}.GetCaCertificates", {"key": _str("key", key)})

    def issue_certificate(self, key: str, csr: str, ttl_seconds: Optional[int] = None,
                          profile: Optional[str] = None) -> Dict[str, Any]:
        """IssueCertificate: signs a PKCS#10 request (PEM) with the primary version of a
        CERT_AUTHORITY key. ``profile`` is ``server`` (default), ``client`` or ``both``.

        Returns: a dict with ``certificate``, ``ca_certificate``, ``ca_chain``, ``serial``,
        ``subject``, ``sans``, ``not_before``, ``not_after``, ``profile``, ``key``, ``version``.
        Raises: CertificateRefused (``reason`` says why) when the CA refuses the request.
        """
        params: Dict[str, Any] = {"key": _str("key", key), "csr": _str("csr", csr)}
        _optional(params, "ttl_seconds", None if ttl_seconds is None else _int("ttl_seconds", ttl_seconds))
        _optional(params, "profile", None if profile is None else _str("profile", profile))
        return self.call(f"{KMS_INTERFACE}.IssueCertificate", params)

    def issue_tls_certificate(self, key: str, ca: str, sans: Optional[List[str]] = None,
                              common_name: Optional[str] = None,
                              ttl_seconds: Optional[int] = None) -> Dict[str, Any]:
        """IssueTlsCertificate: certifies the primary version of a TLS_SERVER or TLS_CLIENT
        key (its private key stays on the token) with the CERT_AUTHORITY key ``ca``.
        ``sans`` are ``DNS:name`` or ``IP:address``.

        Returns: IssueCertificate's dict plus ``ca``, ``ca_version``, ``alias`` (the
        SunPKCS11 KeyStore alias) and ``pkcs11_uri`` (RFC 7512).
        """
        params: Dict[str, Any] = {"key": _str("key", key), "ca": _str("ca", ca)}
        if sans:
            params["sans"] = [_str("sans", s) for s in sans]
        _optional(params, "common_name", None if common_name is None else _str("common_name", common_name))
        _optional(params, "ttl_seconds", None if ttl_seconds is None else _int("ttl_seconds", ttl_seconds))
        return self.call(f"{KMS_INTERFACE}.IssueTlsCertificate", params)

    def get_crl(self, key: str) -> Dict[str, Any]:
        """GetCrl: the current CRL of each CA version of a CERT_AUTHORITY key.

        Returns: a dict with ``key``, ``crls`` (dicts with ``version``, ``number``,
        ``this_update``, ``next_update``, ``revoked``, ``pem``) and ``pem`` (every CRL
        concatenated, ready for ``openssl verify -crl_check -CRLfile``).
        """
        return self.call(f"{KMS_INTERFACE}.GetCrl", {"key": _str("key", key)})

    # -- dev.enclavekms.Admin

    def get_ca_csr(self, key: str, version: Optional[int] = None, subject: Optional[str] = None) -> str:
        """GetCaCsr: the PKCS#10 request (PEM) of a version of an intermediate CA key
        (default: its latest), signed inside the enclave, for an external root to sign."""
        params: Dict[str, Any] = {"key": _str("key", key)}
        _optional(params, "version", None if version is None else _int("version", version))
        _optional(params, "subject", None if subject is None else _str("subject", subject))
        return _field(self.call(f"{ADMIN_INTERFACE}.GetCaCsr", params), "csr", str)

    def import_ca_certificate(self, key: str, version: int, certificate_chain: str) -> Dict[str, Any]:
        """ImportCaCertificate: stores the certificate an external root signed for a
        version of an intermediate CA key. ``certificate_chain`` is PEM: the version's
        certificate, then its issuers up to and including the root.

        Returns: a dict with ``key``, ``version``, ``subject``, ``issuer``, ``not_after``, ``root``.
        """
        return self.call(f"{ADMIN_INTERFACE}.ImportCaCertificate", {
            "key": _str("key", key), "version": _int("version", version),
            "certificate_chain": _str("certificate_chain", certificate_chain)})

    def revoke_certificate(self, serial: str, reason: Optional[str] = None) -> Dict[str, Any]:
        """RevokeCertificate: revokes a certificate a CA key issued, by serial (hex).
        ``reason`` is an RFC 5280 CRLReason name (``keyCompromise``, ...); default unspecified.

        Returns: a dict with ``serial``, ``key``, ``version``, ``reason``, ``revoked``,
        ``not_after``, ``already_revoked``.
        """
        params: Dict[str, Any] = {"serial": _str("serial", serial)}
        _optional(params, "reason", None if reason is None else _str("reason", reason))
        return self.call(f"{ADMIN_INTERFACE}.RevokeCertificate", params)

    def create_key(self, name: str, purpose: str, algorithm: Optional[str] = None,
                   description: Optional[str] = None,
                   required_context: Optional[Sequence[str]] = None,
                   rotation_period_seconds: Optional[int] = None,
                   destroy_wait_days: Optional[int] = None) -> Dict[str, Any]:
        """CreateKey: creates a key and its first version inside the enclave.
        ``purpose`` is ``ENCRYPT`` or ``SIGN``; ``algorithm`` defaults (daemon side)
        to ``AES_256_GCM`` / ``EC_P256_SHA256``. ``rotation_period_seconds`` (at least
        3600) turns on automatic rotation; ``destroy_wait_days`` (7 to 3650, default
        30) is the waiting period before a scheduled destruction.

        Returns: the new key as a dict (the IDL's ``Key``: ``name``, ``purpose``,
        ``algorithm``, ``description``, ``created``, ``primary_version``,
        ``required_context``, ``rotation_period_seconds`` and ``next_rotation`` (absent
        when the key rotates only on demand), ``destroy_wait_days``, ``versions`` -- a
        list of dicts with ``version``, ``state``, ``created``, ``state_changed``,
        ``destroy_at`` (absent unless DESTROY_SCHEDULED or DESTROYED),
        ``encryptions``, ``object_id``).
        """
        params: Dict[str, Any] = {"name": _str("name", name), "purpose": _str("purpose", purpose)}
        _optional(params, "algorithm", None if algorithm is None else _str("algorithm", algorithm))
        _optional(params, "description", None if description is None else _str("description", description))
        if required_context is not None:
            if isinstance(required_context, str):
                raise TypeError("required_context must be a sequence of str, not a str")
            params["required_context"] = [_str("required_context[]", c) for c in required_context]
        _optional(params, "rotation_period_seconds", None if rotation_period_seconds is None
                  else _int("rotation_period_seconds", rotation_period_seconds))
        _optional(params, "destroy_wait_days", None if destroy_wait_days is None
                  else _int("destroy_wait_days", destroy_wait_days))
        r = self.call(f"{ADMIN_INTERFACE}.CreateKey", params)
        return _field(r, "key", dict)

    def update_key_policy(self, name: str, rotation_period_seconds: Optional[int] = None,
                          destroy_wait_days: Optional[int] = None) -> Dict[str, Any]:
        """UpdateKeyPolicy: changes the automatic rotation period (0 turns it off)
        and/or the destruction waiting period; None leaves a setting as it is.

        Returns: the key after the change, as a dict (see :meth:`create_key`).
        """
        params: Dict[str, Any] = {"name": _str("name", name)}
        _optional(params, "rotation_period_seconds", None if rotation_period_seconds is None
                  else _int("rotation_period_seconds", rotation_period_seconds))
        _optional(params, "destroy_wait_days", None if destroy_wait_days is None
                  else _int("destroy_wait_days", destroy_wait_days))
        return _field(self.call(f"{ADMIN_INTERFACE}.UpdateKeyPolicy", params), "key", dict)

    def rotate_key(self, name: str, pending: bool = False) -> Dict[str, Any]:
        """RotateKey: creates a new version inside the enclave and makes it primary;
        with ``pending=True`` (SIGN keys) the new version is PENDING -- published, not
        yet signing -- until :meth:`promote_key_version`.

        Returns: the key after the rotation, as a dict (see :meth:`create_key`).
        """
        if not isinstance(pending, bool):
            raise TypeError(f"pending must be a bool, not {type(pending).__name__}")
        params: Dict[str, Any] = {"name": _str("name", name)}
        if pending:
            params["pending"] = True
        return _field(self.call(f"{ADMIN_INTERFACE}.RotateKey", params), "key", dict)

    def promote_key_version(self, name: str, version: int) -> Dict[str, Any]:
        """PromoteKeyVersion: makes a PENDING version ENABLED and primary.
        Returns: the key after the change, as a dict."""
        return self._change_version("PromoteKeyVersion", name, version)

    def enable_key_version(self, name: str, version: int) -> Dict[str, Any]:
        """EnableKeyVersion: makes a DISABLED version ENABLED again.
        Returns: the key after the change, as a dict."""
        return self._change_version("EnableKeyVersion", name, version)

    def disable_key_version(self, name: str, version: int) -> Dict[str, Any]:
        """DisableKeyVersion: makes an ENABLED version (not the primary) DISABLED;
        reversible. Returns: the key after the change, as a dict."""
        return self._change_version("DisableKeyVersion", name, version)

    def revoke_key_version(self, name: str, version: int) -> Dict[str, Any]:
        """RevokeKeyVersion: IRREVERSIBLE. The version (ENABLED or DISABLED, not the
        primary) no longer decrypts or verifies for ordinary callers; only
        :meth:`re_encrypt` with the re-encryption grant may still use it.
        Returns: the key after the change, as a dict."""
        return self._change_version("RevokeKeyVersion", name, version)

    def schedule_key_version_destruction(self, name: str, version: int,
                                         wait_days: Optional[int] = None) -> Dict[str, Any]:
        """ScheduleKeyVersionDestruction: after ``wait_days`` (default: the key's
        ``destroy_wait_days``; never below 7) the version's hardware object is
        destroyed and what it protected is lost. Until then
        :meth:`cancel_key_version_destruction` undoes it. Not the primary.

        Returns: the key after the change, as a dict; the version's ``destroy_at``
        says when.
        """
        params: Dict[str, Any] = {"name": _str("name", name), "version": _int("version", version)}
        _optional(params, "wait_days", None if wait_days is None else _int("wait_days", wait_days))
        return _field(self.call(f"{ADMIN_INTERFACE}.ScheduleKeyVersionDestruction", params), "key", dict)

    def cancel_key_version_destruction(self, name: str, version: int) -> Dict[str, Any]:
        """CancelKeyVersionDestruction: the version becomes DISABLED (never straight
        ENABLED). Returns: the key after the change, as a dict."""
        return self._change_version("CancelKeyVersionDestruction", name, version)

    def _change_version(self, method: str, name: str, version: int) -> Dict[str, Any]:
        params = {"name": _str("name", name), "version": _int("version", version)}
        return _field(self.call(f"{ADMIN_INTERFACE}.{method}", params), "key", dict)

    def list_keys(self) -> List[Dict[str, Any]]:
        """ListKeys. Returns: a list of dicts (``name``, ``purpose``, ``algorithm``,
        ``primary_version``, ``versions`` -- the number of versions)."""
        return _field(self.call(f"{ADMIN_INTERFACE}.ListKeys"), "keys", list)

    def describe_key(self, name: str) -> Dict[str, Any]:
        """DescribeKey. Returns: the key as a dict (see :meth:`create_key`)."""
        r = self.call(f"{ADMIN_INTERFACE}.DescribeKey", {"name": _str("name", name)})
        return _field(r, "key", dict)

    # -- org.varlink.service

    def get_info(self) -> Dict[str, Any]:
        """org.varlink.service.GetInfo. Returns: a dict with ``vendor``, ``product``,
        ``version``, ``url`` and ``interfaces`` (a list of interface names)."""
        return self.call(f"{SERVICE_INTERFACE}.GetInfo")

    def get_interface_description(self, interface: str) -> str:
        """org.varlink.service.GetInterfaceDescription. Returns: the interface's IDL text."""
        r = self.call(f"{SERVICE_INTERFACE}.GetInterfaceDescription", {"interface": _str("interface", interface)})
        return _field(r, "description", str)


# --------------------------------------------------------------------- shard files

#: Shard files, format 1 (docs/formats.md, "Shard files, format 1").
SHARD_MAGIC = b"EKS"
SHARD_VERSION = 1
SHARD_SUITE = 1  # HKDF-SHA256, AES-256-GCM segments, HMAC-SHA256 header tag
_SHARD_FIXED = 48  # magic, version, suite, segment size, salt (32), nonce prefix (7)
_SHARD_TAG = 16
_SHARD_HEADER_TAG = 32
_SHARD_KDF_LABEL = b"enclave-kms shard 1"
_SHARD_MIN_SEGMENT = 64
_SHARD_MAX_SEGMENT = 64 << 20
_SHARD_MAX_WRAPPED = 1024
_SHARD_MAX_SEGMENTS = 1 << 32


class MissingDependency(ImportError):
    """Shard decryption needs the ``cryptography`` package, which is not installed.
    Everything else in this module works without it."""


def _shard_crypto() -> tuple:
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as e:
        raise MissingDependency(
            "decrypting shard files needs the 'cryptography' package (pip install cryptography, "
            "or apt install python3-cryptography); the rest of enclave_kms works without it") from e
    return AESGCM, HKDF, hashes, InvalidTag


class ShardError(Exception):
    """A shard file that cannot be decrypted as it is. ``reason`` is one of
    ``NOT_A_SHARD``, ``UNSUPPORTED_FORMAT``, ``MALFORMED_HEADER``, ``CONTEXT_MISMATCH``,
    ``HEADER_AUTHENTICATION_FAILED``, ``SEGMENT_AUTHENTICATION_FAILED``, ``TRUNCATED``,
    ``TRAILING_DATA`` (the names of the Java library's ``ShardException.Reason``);
    ``segment`` is the index of the segment concerned, or None. No plaintext of a
    failing segment is ever returned."""

    def __init__(self, reason: str, message: str, segment: Optional[int] = None):
        super().__init__(message)
        self.reason = reason
        self.segment = segment


def encode_context(context: Optional[Mapping[str, str]]) -> bytes:
    """The canonical context encoding (docs/formats.md): u16 count, then per entry in
    ascending order of the key's UTF-8 bytes: u16 length, key, u16 length, value."""
    entries = sorted(((k.encode("utf-8"), v.encode("utf-8")) for k, v in _context(context or {}).items()))
    out = bytearray(len(entries).to_bytes(2, "big"))
    for k, v in entries:
        out += len(k).to_bytes(2, "big") + k + len(v).to_bytes(2, "big") + v
    return bytes(out)


@dataclass(frozen=True)
class ShardHeader:
    """The header of a shard file (not secret). ``parameters`` are its bytes 0..48+c,
    which the header tag covers; ``length`` is where the body starts."""
    segment_size: int
    salt: bytes
    nonce_prefix: bytes
    context: Dict[str, str]
    tag: bytes
    key_name: str
    key_version: int
    wrapped_data_key: bytes = field(repr=False)
    parameters: bytes = field(repr=False)
    length: int


def _malformed(message: str) -> ShardError:
    return ShardError("MALFORMED_HEADER", "malformed shard header: " + message)


def _read_shard_header(read: Any) -> ShardHeader:
    """Parses a header from ``read(n)`` (a file's read), consuming exactly its bytes."""
    raw = bytearray()

    def take(n: int) -> bytes:
        b = read(n)
        while len(b) < n:
            more = read(n - len(b))
            if not more:
                if not raw and not b:
                    raise ShardError("NOT_A_SHARD", 'not a shard file (no "EKS" magic)')
                raise ShardError("TRUNCATED", "the shard is truncated: it ends inside its header")
            b += more
        raw.extend(b)
        return b

    magic = take(3)
    if magic != SHARD_MAGIC:
        raise ShardError("NOT_A_SHARD", 'not a shard file (no "EKS" magic)')
    version, suite = take(2)
    if version != SHARD_VERSION:
        raise ShardError("UNSUPPORTED_FORMAT", f"shard format version {version} is not supported "
                                               f"(this module reads version {SHARD_VERSION})")
    if suite != SHARD_SUITE:
        raise ShardError("UNSUPPORTED_FORMAT", f"shard suite {suite} is not supported")
    segment_size = int.from_bytes(take(4), "big")
    if not _SHARD_MIN_SEGMENT <= segment_size <= _SHARD_MAX_SEGMENT:
        raise _malformed(f"segment size {segment_size} is outside {_SHARD_MIN_SEGMENT}..{_SHARD_MAX_SEGMENT}")
    salt = take(32)
    prefix = take(7)
    count = int.from_bytes(take(2), "big")
    if count > 64:
        raise _malformed(f"the context has {count} entries; at most 64")
    context: Dict[str, str] = {}
    previous = None
    for _ in range(count):
        fields = []
        for _ in range(2):
            n = int.from_bytes(take(2), "big")
            if n > 1024:
                raise _malformed(f"a context field has {n} bytes; at most 1024")
            fields.append(take(n))
        k, v = fields
        if not k:
            raise _malformed("the context has an empty key")
        if previous is not None and previous >= k:
            raise _malformed("the context is not in canonical order")
        previous = k
        try:
            context[k.decode("utf-8")] = v.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("a name or context field is not valid UTF-8") from None
    parameters = bytes(raw)
    tag = take(_SHARD_HEADER_TAG)
    n = take(1)[0]
    if not 1 <= n <= 128:
        raise _malformed(f"key name length {n} is outside 1..128")
    try:
        key_name = take(n).decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("a name or context field is not valid UTF-8") from None
    key_version = int.from_bytes(take(4), "big")
    if not 1 <= key_version < 1 << 31:
        raise _malformed(f"key version {key_version} is not positive")
    w = int.from_bytes(take(2), "big")
    if not 1 <= w <= _SHARD_MAX_WRAPPED:
        raise _malformed(f"wrapped data key length {w} is outside 1..{_SHARD_MAX_WRAPPED}")
    wrapped = take(w)
    # The envelope ("EKC", format 1) names its own key and version; the header's copies must agree.
    if len(wrapped) < 11 or wrapped[:4] != b"EKC\x01" or not 1 <= wrapped[4] <= 128 \
            or len(wrapped) < 5 + wrapped[4] + 4 + 2 + 16:
        raise _malformed("the wrapped data key is not a format-1 KMS envelope")
    env_name = wrapped[5:5 + wrapped[4]]
    env_version = int.from_bytes(wrapped[5 + wrapped[4]:9 + wrapped[4]], "big")
    if env_name != key_name.encode("utf-8") or env_version != key_version:
        raise _malformed(f"the header names key {key_name} version {key_version} but its wrapped data key is "
                         f"under {env_name.decode('utf-8', 'replace')} version {env_version}")
    return ShardHeader(segment_size, salt, prefix, context, tag, key_name, key_version, wrapped, parameters,
                       len(raw))


def read_shard_header(source: Any) -> ShardHeader:
    """The header of a shard (a path, or a binary file positioned at its start), its
    structure checked; authenticity needs the data key (:class:`ShardReader`)."""
    if isinstance(source, (str, bytes, os.PathLike)):
        with open(source, "rb") as f:
            return _read_shard_header(f.read)
    return _read_shard_header(source.read)


class _ShardKeys:
    """The file's keys: OKM = HKDF-SHA256(data key, salt, "enclave-kms shard 1" ||
    SHA-256(parameters), 64); segment key = OKM[:32], header key = OKM[32:]."""

    def __init__(self, header: ShardHeader, data_key: bytes):
        import hashlib
        import hmac
        AESGCM, HKDF, hashes, self._invalid_tag = _shard_crypto()
        if len(data_key) != 32:
            raise _malformed(f"the data key has {len(data_key)} bytes; shard format 1 uses 32")
        info = _SHARD_KDF_LABEL + hashlib.sha256(header.parameters).digest()
        okm = bytearray(HKDF(algorithm=hashes.SHA256(), length=64, salt=header.salt, info=info).derive(data_key))
        try:
            tag = hmac.new(bytes(okm[32:]), header.parameters, hashlib.sha256).digest()
            if not hmac.compare_digest(tag, header.tag):
                raise ShardError("HEADER_AUTHENTICATION_FAILED", "the shard header fails authentication: it was "
                                 "modified, or its wrapped data key was replaced")
            self._aead = AESGCM(bytes(okm[:32]))
        finally:
            okm[:] = bytes(len(okm))  # best effort: Python keeps copies we cannot reach
        self._prefix = header.nonce_prefix

    def _try_open(self, index: int, last: bool, segment: bytes) -> Optional[bytes]:
        nonce = self._prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        try:
            return self._aead.decrypt(nonce, segment, None)
        except self._invalid_tag:
            return None

    def open(self, index: int, last: bool, segment: bytes) -> bytes:
        """The segment's plaintext, or ShardError saying why not (diagnosed like the Java library)."""
        if len(segment) < _SHARD_TAG:
            raise ShardError("TRUNCATED", f"the shard is truncated: it ends inside segment {index}", index)
        plaintext = self._try_open(index, last, segment)
        if plaintext is not None:
            return plaintext
        other = self._try_open(index, not last, segment) is not None
        if other and last:
            raise ShardError("TRUNCATED", f"the shard is truncated: segment {index} is not its final segment",
                             index)
        if other:
            raise ShardError("TRAILING_DATA", f"data follows the final segment (segment {index}): "
                                              "the shard was extended", index)
        where = ", the final one," if last else ""
        raise ShardError("SEGMENT_AUTHENTICATION_FAILED", f"segment {index}{where} fails authentication: the shard "
                                                          "was modified; its plaintext is withheld", index)


def _unwrapper(client: Any, unwrap: Any) -> Any:
    if unwrap is not None:
        return unwrap
    if client is None:
        raise TypeError("give a KmsClient (or an unwrap function) to decrypt a shard's data key")
    return lambda wrapped, context: client.decrypt(wrapped, context).plaintext


def _open_shard_keys(header: ShardHeader, client: Any, context: Optional[Mapping[str, str]],
                     unwrap: Any) -> _ShardKeys:
    _shard_crypto()  # fail on a missing package before asking the daemon for anything
    expected = _context(context or {})
    if expected != header.context:
        raise ShardError("CONTEXT_MISMATCH", f"the shard is bound to context {header.context}, not {expected}")
    data_key = _unwrapper(client, unwrap)(header.wrapped_data_key, dict(header.context))
    return _ShardKeys(header, bytes(data_key))


def _check_final_length(index: int, length: int) -> None:
    if length == 0 and index == 0:
        raise ShardError("TRUNCATED", "the shard is truncated: it ends after its header, with no segment", 0)
    if length < _SHARD_TAG or (length == _SHARD_TAG and index > 0):
        raise ShardError("TRUNCATED", f"the shard is truncated: it ends inside segment {index}", index)


class ShardReader:
    """Random access to the plaintext of a shard file.

    ``source`` is a path or a seekable binary file; ``client`` a :class:`KmsClient` (its
    ``decrypt`` unwraps the header's data key) or ``unwrap=f(wrapped, context) -> bytes``
    instead; ``context`` the context the shard must be bound to (None: the empty one).

    Opening checks the header (context, data key, header tag), the file's length against
    the layout, and authenticates the final segment, so :attr:`size` is authentic and a
    shard that was cut or extended is refused here. :meth:`read` decrypts only the
    segments it touches (the last one is cached) and never returns plaintext of a segment
    that fails. Needs the ``cryptography`` package (:class:`MissingDependency`).
    """

    def __init__(self, source: Any, client: Any = None, context: Optional[Mapping[str, str]] = None, *,
                 unwrap: Any = None):
        self._owned = isinstance(source, (str, bytes, os.PathLike))
        self._file = open(source, "rb") if self._owned else source
        try:
            self._file.seek(0)
            self.header = _read_shard_header(self._file.read)
            self._keys = _open_shard_keys(self.header, client, context, unwrap)
            self._file.seek(0, os.SEEK_END)
            body = self._file.tell() - self.header.length
            s = self.header.segment_size
            c = s + _SHARD_TAG
            if body <= 0:
                raise ShardError("TRUNCATED", "the shard is truncated: it ends after its header, with no segment", 0)
            n = (body + c - 1) // c
            if n > _SHARD_MAX_SEGMENTS:
                raise ShardError("TRAILING_DATA", "the shard has more than 2^32 segments: data follows its end")
            self.segment_count = n
            self._final_bytes = body - (n - 1) * c
            self._cached: Optional[tuple] = None
            if self._final_bytes < _SHARD_TAG or (self._final_bytes == _SHARD_TAG and n > 1):
                self._raise_if_extended(n - 2)
                raise ShardError("TRUNCATED", f"the shard is truncated: it ends inside segment {n - 1}", n - 1)
            try:
                self._segment(n - 1)
            except ShardError as e:
                if e.reason == "SEGMENT_AUTHENTICATION_FAILED":
                    self._raise_if_extended(n - 2)
                raise
            #: The plaintext length (authentic).
            self.size = body - n * _SHARD_TAG
        except BaseException:
            self.close()
            raise

    def _raw_segment(self, index: int) -> bytes:
        c = self.header.segment_size + _SHARD_TAG
        length = self._final_bytes if index == self.segment_count - 1 else c
        self._file.seek(self.header.length + index * c)
        data = self._file.read(length)
        if len(data) < length:
            raise ShardError("TRUNCATED", f"the shard is truncated: it ends inside segment {index}", index)
        return data

    def _raise_if_extended(self, start: int) -> None:
        c = self.header.segment_size + _SHARD_TAG
        for i in range(start, max(-1, start - 4), -1):
            self._file.seek(self.header.length + i * c)
            if self._keys._try_open(i, True, self._file.read(c)) is not None:
                raise ShardError("TRAILING_DATA", f"data follows the final segment (segment {i}): "
                                                  "the shard was extended", i)

    def _segment(self, index: int) -> bytes:
        if self._cached is None or self._cached[0] != index:
            self._cached = None
            self._cached = (index, self._keys.open(index, index == self.segment_count - 1, self._raw_segment(index)))
        return self._cached[1]

    def read(self, position: int, n: int) -> bytes:
        """Up to ``n`` bytes of plaintext from ``position`` (fewer only at the end; b"" past it)."""
        if position < 0 or n < 0:
            raise ValueError("position and n must not be negative")
        s = self.header.segment_size
        out = bytearray()
        while len(out) < n and position < self.size:
            seg = self._segment(position // s)
            off = position % s
            chunk = seg[off:off + n - len(out)]
            out += chunk
            position += len(chunk)
        return bytes(out)

    def segments(self) -> Iterator[bytes]:
        """The plaintext, segment by segment, in order."""
        for i in range(self.segment_count):
            yield self._segment(i)

    def close(self) -> None:
        self._cached = None
        if self._owned and getattr(self, "_file", None) is not None:
            self._file.close()

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ShardReader key={self.header.key_name!r} version={self.header.key_version}>"


def decrypt_shard(source: Any, client: Any = None, context: Optional[Mapping[str, str]] = None, out: Any = None,
                  *, unwrap: Any = None) -> Any:
    """Decrypts a whole shard file as a stream (any readable binary file, or a path).

    With ``out`` (a writable binary file) the plaintext is written there segment by
    segment and the number of bytes is returned; otherwise it is returned as bytes. Each
    segment is written only after it has authenticated; if a later one fails,
    :class:`ShardError` is raised and what was written must be discarded.
    ``client``/``unwrap`` and ``context`` are as for :class:`ShardReader`.
    """
    if isinstance(source, (str, bytes, os.PathLike)):
        with open(source, "rb") as f:
            return decrypt_shard(f, client, context, out, unwrap=unwrap)
    header = _read_shard_header(source.read)
    keys = _open_shard_keys(header, client, context, unwrap)
    collected = bytearray() if out is None else None
    c = header.segment_size + _SHARD_TAG
    total = 0
    index = 0
    pending = b""
    while True:
        chunk = pending + source.read(c - len(pending))
        while len(chunk) < c:
            more = source.read(c - len(chunk))
            if not more:
                break
            chunk += more
        pending = source.read(1) if len(chunk) == c else b""
        last = not pending
        if last:
            _check_final_length(index, len(chunk))
        if index >= _SHARD_MAX_SEGMENTS:
            raise ShardError("TRAILING_DATA", "the shard has more than 2^32 segments: data follows its end", index)
        plaintext = keys.open(index, last, chunk)
        total += len(plaintext)
        if collected is not None:
            collected += plaintext
        else:
            out.write(plaintext)
        if last:
            break
        index += 1
    return bytes(collected) if collected is not None else total


# ---------------------------------------------------------------------------- CLI

EXIT_OK = 0
EXIT_VARLINK_ERROR = 1  # the daemon answered with an error; stderr has it as JSON
EXIT_USAGE = 2          # argparse's own code for bad arguments
EXIT_CONNECTION = 3     # the daemon could not be reached or broke the protocol
EXIT_SHARD = 4          # decrypt-shard: the shard is damaged, bound to another context, or cannot be read


def _parse_context(pairs: Optional[List[str]], parser: argparse.ArgumentParser) -> Optional[Dict[str, str]]:
    if not pairs:
        return None
    context: Dict[str, str] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k:
            parser.error(f"--context takes KEY=VALUE, not {pair!r}")
        if k in context:
            parser.error(f"--context {k} given twice")
        context[k] = v
    return context


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="enclave_kms",
        description="Talk to the enclave-kms daemon; prints the reply as JSON (binary values in base64).",
        epilog="Exit status: 0 ok; 1 the daemon replied with an error (printed to stderr as JSON "
               '{"error": NAME, "parameters": {...}}); 2 bad arguments; 3 no connection or a broken reply; '
               "4 decrypt-shard: the shard is damaged or bound to another context, or cryptography is missing.")
    p.add_argument("--socket", help=f"daemon socket (default: ${SOCKET_ENV}, else {DEFAULT_SOCKET})")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser("status", help="the daemon's health")
    g = sub.add_parser("generate-data-key", help="generate a data key under KEY")
    g.add_argument("key", metavar="KEY")
    g.add_argument("--context", action="append", metavar="K=V", help="context entry (repeatable)")
    g.add_argument("--bytes", type=int, help="data key length (default: the daemon's, 32)")
    d = sub.add_parser("decrypt", help="decrypt a base64 ciphertext envelope")
    d.add_argument("ciphertext", metavar="CIPHERTEXT_B64")
    d.add_argument("--context", action="append", metavar="K=V", help="context entry (repeatable)")
    s = sub.add_parser("decrypt-shard", help="decrypt a shard file (needs the cryptography package)")
    s.add_argument("shard", metavar="SHARD")
    s.add_argument("out", metavar="OUT", help="the plaintext, written only if the whole shard authenticates")
    s.add_argument("--context", action="append", metavar="K=V", help="context entry (repeatable)")
    return p


def _b64s(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _LocalFileError(Exception):
    """A file the command line was given cannot be read or written."""


def _decrypt_shard_to_file(shard: str, out: str, client: KmsClient,
                           context: Optional[Dict[str, str]]) -> Dict[str, Any]:
    """Decrypts into a temporary file beside OUT and renames it only when every segment
    authenticated, so OUT never holds a partial or unauthenticated plaintext."""
    try:
        header = read_shard_header(shard)
        directory = os.path.dirname(os.path.abspath(out))
        fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(out) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise _LocalFileError(f"{e.filename}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            n = decrypt_shard(shard, client, context, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, out)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return {"key": header.key_name, "version": header.key_version, "plaintext_bytes": n, "out": out}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    client = KmsClient(args.socket, timeout=args.timeout)
    try:
        if args.command == "status":
            out: Any = client.status()
        elif args.command == "generate-data-key":
            dk = client.generate_data_key(args.key, _parse_context(args.context, parser), args.bytes)
            out = {"key": dk.key, "version": dk.version,
                   "plaintext": _b64s(dk.plaintext), "ciphertext": _b64s(dk.ciphertext)}
        elif args.command == "decrypt-shard":
            out = _decrypt_shard_to_file(args.shard, args.out, client, _parse_context(args.context, parser))
        else:
            try:
                ciphertext = base64.b64decode(args.ciphertext, validate=True)
            except (binascii.Error, ValueError):
                parser.error("CIPHERTEXT_B64 is not valid base64")
            dec = client.decrypt(ciphertext, _parse_context(args.context, parser))
            out = {"key": dec.key, "version": dec.version, "plaintext": _b64s(dec.plaintext)}
    except VarlinkError as e:
        print(json.dumps({"error": e.error, "parameters": e.parameters}), file=sys.stderr)
        return EXIT_VARLINK_ERROR
    except ShardError as e:
        print(json.dumps({"error": "ShardError", "reason": e.reason, "segment": e.segment, "message": str(e)}),
              file=sys.stderr)
        return EXIT_SHARD
    except (MissingDependency, _LocalFileError) as e:
        print(f"enclave_kms: {e}", file=sys.stderr)
        return EXIT_SHARD
    except OSError as e:  # ProtocolError, TimeoutError and connection failures
        print(f"enclave_kms: {e}", file=sys.stderr)
        return EXIT_CONNECTION
    finally:
        client.close()
    print(json.dumps(out, indent=2, sort_keys=True))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
