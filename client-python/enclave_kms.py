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
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import socket
import sys
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
    "AuditUnavailable",
    "error_from_reply",
    "KmsClient", "DataKey", "Encrypted", "Decrypted", "DecryptResult", "Signature",
    "PublicKey", "PublicKeys", "VersionPublicKey", "ReEncrypted", "ReEncryptResult", "main",
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


_KMS_ERRORS = {cls.__name__: cls for cls in (
    InvalidParameter, KeyNotFound, KeyVersionNotFound, InvalidKeyUsage,
    KeyVersionUnusable, PermissionDenied, DecryptionFailed, EnclaveUnavailable,
    InternalError, InvalidRequest, RequestTooLarge, TooManyConnections,
    KeyAlreadyExists, KeyVersionDestroyed, InvalidStateTransition, AuditUnavailable,
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

    # -- dev.enclavekms.Admin

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


# ---------------------------------------------------------------------------- CLI

EXIT_OK = 0
EXIT_VARLINK_ERROR = 1  # the daemon answered with an error; stderr has it as JSON
EXIT_USAGE = 2          # argparse's own code for bad arguments
EXIT_CONNECTION = 3     # the daemon could not be reached or broke the protocol


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
               '{"error": NAME, "parameters": {...}}); 2 bad arguments; 3 no connection or a broken reply.')
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
    return p


def _b64s(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


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
    except OSError as e:  # ProtocolError, TimeoutError and connection failures
        print(f"enclave_kms: {e}", file=sys.stderr)
        return EXIT_CONNECTION
    finally:
        client.close()
    print(json.dumps(out, indent=2, sort_keys=True))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
