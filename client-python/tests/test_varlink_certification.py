"""VarlinkConnection against a real varlink peer: the varlink-go-certification server.

The org.varlink.certification sequence checks that the client encodes and decodes
bools, ints, floats, strings, structs, maps, sets, nullables and the type
MyType exactly, reads a stream of ``more`` replies and sends a ``oneway`` call:
each reply becomes the next call's arguments, and End says whether every step
matched what the server expected.
"""

import threading
import unittest

import support  # noqa: F401  (puts enclave_kms on sys.path)
from support import CertificationServer

import enclave_kms
from enclave_kms import KmsError, ReplyTooLarge, VarlinkConnection, VarlinkError

CERT = "org.varlink.certification"


class CertificationServerTest(unittest.TestCase):

    def setUp(self):
        self.server = CertificationServer()
        self.addCleanup(self.server.stop)
        self.conn = VarlinkConnection(self.server.path, timeout=5)
        self.addCleanup(self.conn.close)

    def test_certification_sequence_allOk(self):
        c = self.conn
        client_id = c.call(f"{CERT}.Start")["client_id"]
        self.assertIsInstance(client_id, str)

        def step(method, reply):
            return c.call(f"{CERT}.{method}", dict(reply, client_id=client_id))

        r = c.call(f"{CERT}.Test01", {"client_id": client_id})
        self.assertIs(r["bool"], True)
        r = step("Test02", r)              # bool -> int
        self.assertEqual(r, {"int": 1})
        r = step("Test03", r)              # int -> float (Go writes 1.0 as 1: any JSON number)
        self.assertIsInstance(r["float"], (int, float))
        r = step("Test04", r)              # float -> string
        self.assertIsInstance(r["string"], str)
        r = step("Test05", r)              # string -> bool, int, float, string
        self.assertEqual(set(r), {"bool", "int", "float", "string"})
        r = step("Test06", r)              # the four -> struct
        self.assertIsInstance(r["struct"], dict)
        r = step("Test07", r)              # struct -> map
        self.assertIsInstance(r["map"], dict)
        r = step("Test08", r)              # map -> set (an object of empty objects)
        self.assertTrue(all(v == {} for v in r["set"].values()))
        r = step("Test09", r)              # set -> MyType
        self.assertIn("interface", r["mytype"])

        replies = list(c.call(f"{CERT}.Test10", {"client_id": client_id, "mytype": r["mytype"]},
                              more=True))
        strings = [reply["string"] for reply in replies]
        # The server does not check Test11's argument, so check the stream here.
        self.assertEqual(strings, [f"Reply number {i}" for i in range(1, 11)])

        self.assertIsNone(c.call(f"{CERT}.Test11", {"client_id": client_id, "last_more_replies": strings},
                                 oneway=True))
        end = c.call(f"{CERT}.End", {"client_id": client_id})
        self.assertIs(end.get("all_ok"), True, end)

    def test_getInfo_listsCertificationInterface(self):
        info = self.conn.call("org.varlink.service.GetInfo")
        self.assertIn("org.varlink.certification", info["interfaces"])
        self.assertIn("org.varlink.service", info["interfaces"])

    def test_getInterfaceDescription_returnsIdl(self):
        r = self.conn.call("org.varlink.service.GetInterfaceDescription", {"interface": CERT})
        self.assertIn(f"interface {CERT}", r["description"])
        self.assertIn("method End(", r["description"])

    def test_unknownMethod_raisesMethodNotFound(self):
        with self.assertRaises(VarlinkError) as cm:
            self.conn.call(f"{CERT}.NoSuchMethod")
        self.assertEqual(cm.exception.error, "org.varlink.service.MethodNotFound")
        self.assertIs(type(cm.exception), VarlinkError)
        self.assertFalse(self.conn.closed)  # an error reply leaves the connection usable
        self.assertIn("interfaces", self.conn.call("org.varlink.service.GetInfo"))

    def test_unknownInterface_raisesInterfaceNotFound(self):
        with self.assertRaises(VarlinkError) as cm:
            self.conn.call("org.example.Nothing.Here")
        self.assertEqual(cm.exception.error, "org.varlink.service.InterfaceNotFound")

    def test_errorOfOtherInterface_isPlainVarlinkError(self):
        with self.assertRaises(VarlinkError) as cm:
            self.conn.call(f"{CERT}.Test01", {"client_id": "not-a-client"})
        self.assertEqual(cm.exception.error, f"{CERT}.ClientIdError")
        self.assertNotIsInstance(cm.exception, KmsError)

    def test_replyOverLimit_raisesReplyTooLargeAndCloses(self):
        with VarlinkConnection(self.server.path, timeout=5, max_reply_bytes=256) as small:
            self.assertIn("interfaces", small.call("org.varlink.service.GetInfo"))  # under the limit
            with self.assertRaises(ReplyTooLarge) as cm:
                small.call("org.varlink.service.GetInterfaceDescription", {"interface": CERT})
            self.assertEqual(cm.exception.limit, 256)
            self.assertTrue(small.closed)
            with self.assertRaises(enclave_kms.ProtocolError):
                small.call("org.varlink.service.GetInfo")

    def test_kmsClientServiceMethods_workAgainstRealPeer(self):
        with enclave_kms.KmsClient(self.server.path, timeout=5) as client:
            self.assertEqual(client.get_info()["product"], "Certification")
            self.assertIn("method Start()", client.get_interface_description(CERT))

    def test_threadsSharingConnection_eachGetTheirOwnReply(self):
        errors = []

        def worker(n):
            try:
                for _ in range(25):
                    cid = self.conn.call(f"{CERT}.Start")["client_id"]
                    self.assertEqual(self.conn.call(f"{CERT}.Test01", {"client_id": cid}), {"bool": True})
                    self.conn.call(f"{CERT}.End", {"client_id": cid})
            except Exception as e:  # collected and reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
