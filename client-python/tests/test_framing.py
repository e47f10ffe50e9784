"""VarlinkConnection framing and reply handling against a scripted peer that can send
what a well-behaved server never would: split and merged frames, invalid UTF-8,
bad JSON, oversized replies, early hang-ups, silence."""

import json
import os
import threading
import unittest

import support  # noqa: F401  (puts enclave_kms on sys.path)
from support import RecordingServer

from enclave_kms import ProtocolError, ReplyTooLarge, VarlinkConnection, VarlinkError

M = "org.example.Test.Method"


class FramingTest(unittest.TestCase):

    def setUp(self):
        self.server = RecordingServer()
        self.addCleanup(self.server.stop)

    def connect(self, **kwargs):
        kwargs.setdefault("timeout", 5)
        conn = VarlinkConnection(self.server.path, **kwargs)
        self.addCleanup(conn.close)
        return conn

    def assertBroken(self, conn, exc=ProtocolError):
        with self.assertRaises(exc):
            conn.call(M)
        self.assertTrue(conn.closed)
        with self.assertRaises(ProtocolError):
            conn.call(M)

    # -- requests

    def test_request_isCompactJsonWithNulAndNoEmptyParameters(self):
        self.server.reply(M, {})
        conn = self.connect()
        conn.call(M)
        conn.call(M, {})
        conn.call(M, {"text": "grüße €"})
        raw = self.server.raw_requests
        self.assertEqual(raw[0], b'{"method":"org.example.Test.Method"}')
        self.assertEqual(raw[1], raw[0])
        self.assertEqual(raw[2], '{"method":"org.example.Test.Method","parameters":{"text":"grüße €"}}'
                         .encode("utf-8"))

    def test_moreAndOneway_areFlaggedInRequest(self):
        self.server.script[M] = [{"parameters": {"n": 1}}]
        conn = self.connect()
        self.assertEqual(list(conn.call(M, {"a": 1}, more=True)), [{"n": 1}])
        self.assertIsNone(conn.call(M, oneway=True))
        self.assertEqual(conn.call(M), {"n": 1})  # the oneway call left no reply behind
        self.assertIs(self.server.requests[0]["more"], True)
        self.assertIs(self.server.requests[1]["oneway"], True)
        self.assertNotIn("more", self.server.requests[2])
        self.assertNotIn("oneway", self.server.requests[2])

    def test_unencodableParameter_raisesBeforeSending(self):
        self.server.reply(M, {"ok": True})
        conn = self.connect()
        for bad in ({"s": "\ud800"}, {"f": float("nan")}, {"o": object()}):
            with self.assertRaises((ValueError, TypeError)):
                conn.call(M, bad)
        self.assertEqual(conn.call(M), {"ok": True})
        self.assertEqual(len(self.server.requests), 1)

    def test_moreAndOneway_together_rejected(self):
        conn = self.connect()
        with self.assertRaises(ValueError):
            conn.call(M, more=True, oneway=True)

    # -- reply framing

    def test_replySplitIntoSingleBytes_isReassembled(self):
        frame = json.dumps({"parameters": {"text": "grüße €" * 50}}).encode("utf-8") + b"\0"
        self.server.script[M] = [frame[i:i + 1] for i in range(len(frame))]
        self.assertEqual(self.connect().call(M), {"text": "grüße €" * 50})

    def test_severalRepliesInOneWrite_areSplitAtNul(self):
        frames = b"".join(json.dumps({"parameters": {"i": i}, "continues": i < 4}).encode() + b"\0"
                          for i in range(5))
        self.server.script[M] = [frames]
        conn = self.connect()
        self.assertEqual([r["i"] for r in conn.call(M, more=True)], [0, 1, 2, 3, 4])
        self.server.reply("org.example.Test.Next", {"next": True})
        self.assertEqual(conn.call("org.example.Test.Next"), {"next": True})

    def test_replyParameters_missingNullOrEmpty_giveEmptyDict(self):
        conn = self.connect()
        for reply in (b'{}\0', b'{"parameters":null}\0', b'{"parameters":{}}\0'):
            self.server.script[M] = [reply]
            self.assertEqual(conn.call(M), {})

    def test_replyOfExactlyTheLimit_isAccepted_oneMoreByteIsNot(self):
        body = b'{"parameters":{"s":"' + b"x" * 100 + b'"}}'
        self.server.script[M] = [body + b"\0"]
        self.assertEqual(len(self.connect(max_reply_bytes=len(body)).call(M)["s"]), 100)
        conn = self.connect(max_reply_bytes=len(body) - 1)
        with self.assertRaises(ReplyTooLarge):
            conn.call(M)
        self.assertTrue(conn.closed)

    def test_endlessReplyWithoutNul_stopsAtLimit(self):
        self.server.script[M] = [b"[" * 4096] * 100  # 400 KiB, never terminated
        conn = self.connect(max_reply_bytes=10_000)
        with self.assertRaises(ReplyTooLarge):
            conn.call(M)
        self.assertLess(len(conn._buffer), 10_000 + 65536 + 1)

    # -- broken replies close the connection

    def test_invalidUtf8_isProtocolError(self):
        self.server.script[M] = [b'{"parameters":{"s":"\xff\xfe"}}\0']
        self.assertBroken(self.connect())

    def test_overlongUtf8Encoding_isProtocolError(self):
        self.server.script[M] = [b'{"parameters":{"s":"\xc0\xaf"}}\0']
        self.assertBroken(self.connect())

    def test_malformedJson_isProtocolError(self):
        self.server.script[M] = [b'{"parameters":\0']
        self.assertBroken(self.connect())

    def test_nonObjectReply_isProtocolError(self):
        self.server.script[M] = [b'[1,2]\0']
        self.assertBroken(self.connect())

    def test_duplicateKey_isProtocolError(self):
        self.server.script[M] = [b'{"parameters":{},"error":"a.B","error":"c.D"}\0']
        self.assertBroken(self.connect())

    def test_nanConstant_isProtocolError(self):
        self.server.script[M] = [b'{"parameters":{"x":NaN}}\0']
        self.assertBroken(self.connect())

    def test_wronglyTypedFields_areProtocolErrors(self):
        for reply in (b'{"parameters":[]}\0', b'{"error":5}\0', b'{"continues":"yes"}\0'):
            with self.subTest(reply=reply):
                self.server.script[M] = [reply]
                self.assertBroken(self.connect())

    def test_continuesWithoutMore_isProtocolError(self):
        self.server.script[M] = [{"parameters": {}, "continues": True}]
        self.assertBroken(self.connect())

    def test_hangUpBeforeReply_isProtocolError(self):
        self.server.script[M] = [None]
        self.assertBroken(self.connect())

    def test_hangUpInsideReply_isProtocolError(self):
        self.server.script[M] = [b'{"parameters":{', None]
        conn = self.connect()
        with self.assertRaisesRegex(ProtocolError, "inside a reply"):
            conn.call(M)

    def test_noReplyWithinTimeout_raisesTimeoutErrorAndCloses(self):
        self.server.script[M] = []
        conn = self.connect(timeout=0.2)
        with self.assertRaises(TimeoutError):
            conn.call(M)
        self.assertTrue(conn.closed)

    # -- errors and streams

    def test_errorReply_raisesVarlinkErrorAndKeepsConnection(self):
        self.server.script[M] = [{"error": "org.example.Test.Oops"}]
        conn = self.connect()
        with self.assertRaises(VarlinkError) as cm:
            conn.call(M)
        self.assertEqual(cm.exception.error, "org.example.Test.Oops")
        self.assertEqual(cm.exception.parameters, {})
        self.assertEqual(str(cm.exception), "org.example.Test.Oops")
        self.assertFalse(conn.closed)

    def test_errorInsideStream_raisesAndKeepsConnection(self):
        self.server.script[M] = [{"parameters": {"i": 0}, "continues": True},
                                 {"error": "org.example.Test.Oops", "parameters": {"message": "late"}}]
        self.server.reply("org.example.Test.Next", {"next": True})
        conn = self.connect()
        got = []
        with self.assertRaises(VarlinkError) as cm:
            for r in conn.call(M, more=True):
                got.append(r)
        self.assertEqual(got, [{"i": 0}])
        self.assertEqual(str(cm.exception), "org.example.Test.Oops: late")
        self.assertEqual(conn.call("org.example.Test.Next"), {"next": True})

    def test_abandonedStream_closesConnection(self):
        self.server.script[M] = [{"parameters": {"i": i}, "continues": True} for i in range(3)]
        conn = self.connect()
        stream = conn.call(M, more=True)
        self.assertEqual(next(stream), {"i": 0})
        stream.close()
        self.assertTrue(conn.closed)

    def test_callInsideOwnStream_raisesRuntimeError(self):
        self.server.script[M] = [{"parameters": {"i": i}, "continues": i < 1} for i in range(2)]
        conn = self.connect()
        stream = conn.call(M, more=True)
        next(stream)
        with self.assertRaises(RuntimeError):
            conn.call(M)
        self.assertEqual(list(stream), [{"i": 1}])
        self.assertFalse(conn.closed)

    def test_streamNotIterated_sendsNothing(self):
        self.server.reply(M, {"ok": True})
        conn = self.connect()
        conn.call(M, more=True)
        self.assertEqual(conn.call(M), {"ok": True})
        self.assertEqual(len(self.server.requests), 1)

    def test_closeFromAnotherThread_wakesBlockedCall(self):
        self.server.script[M] = []
        conn = self.connect(timeout=None)
        errors = []

        def blocked():
            try:
                conn.call(M)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=blocked)
        t.start()
        support.wait_for(lambda: len(self.server.requests) == 1, "the call to arrive")
        conn.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(errors), 1)

    # -- addresses

    def test_missingSocket_raisesFileNotFoundNamingPath(self):
        path = os.path.join(os.path.dirname(self.server.path), "absent.sock")
        with self.assertRaises(FileNotFoundError) as cm:
            VarlinkConnection(path)
        self.assertIn(path, str(cm.exception))

    def test_unixAddressPrefix_isAccepted(self):
        self.server.reply(M, {"ok": True})
        with VarlinkConnection(f"unix:{self.server.path};mode=0600", timeout=5) as conn:
            self.assertEqual(conn.call(M), {"ok": True})


if __name__ == "__main__":
    unittest.main()
