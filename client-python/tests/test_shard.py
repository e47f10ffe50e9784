"""Shard files, format 1: the test vectors of docs/formats.md checked by this independent
implementation (hashlib, hmac and the ``cryptography`` package; no Java involved), random
access, tampering, the data key fetched through KmsClient, and the message when
``cryptography`` is missing."""

import base64
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

import support
from support import RecordingServer

import enclave_kms
from enclave_kms import KmsClient, MissingDependency, ShardError, ShardReader, decrypt_shard, read_shard_header

FORMATS = support.CLIENT_DIR.parent / "docs" / "formats.md"


def vector_blocks():
    """The ```text blocks of docs/formats.md whose first line starts with "shard test vector"."""
    text = FORMATS.read_text(encoding="utf-8")
    blocks = {}
    parts = text.split("```text\n")
    for part in parts[1:]:
        lines = part.split("\n```", 1)[0].splitlines()
        if not lines[0].startswith("shard test vector"):
            continue
        fields, last = {}, None
        for line in lines[1:]:
            if line.startswith(" "):
                fields[last] += line.strip()
            else:
                last = line[:16].strip()
                fields[last] = line[16:].strip()
        blocks[lines[0]] = fields
    return blocks


def unhex(s):
    return bytes.fromhex(s.replace(" ", ""))


BLOCKS = vector_blocks()
PARAMS = BLOCKS["shard test vector parameters"]
CONTEXT = json.loads(PARAMS["context"])
MASTER_KEY = unhex(PARAMS["master key"])


def unwrap_with_published_master_key(envelope, context):
    """Decrypt of the daemon, for the published master key only: envelope format 1,
    AAD = envelope header (magic .. scheme) || canonical context."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    n = envelope[4]
    header = envelope[:10 + n]
    iv_len = envelope[10 + n]
    iv = envelope[11 + n:11 + n + iv_len]
    return AESGCM(MASTER_KEY).decrypt(iv, envelope[11 + n + iv_len:], header + enclave_kms.encode_context(context))


def vector_file(name):
    v = BLOCKS[name]
    segments = b"".join(unhex(v[k]) for k in sorted((k for k in v if k.startswith("segment ")),
                                                     key=lambda k: int(k.split()[1])))
    return unhex(PARAMS["header"]) + segments


def vector_plaintext(name):
    p = BLOCKS[name]["plaintext"]
    return b"" if p == "(empty)" else unhex(p)


VECTORS = [k for k in BLOCKS if k != "shard test vector parameters"]
V3 = "shard test vector 3: 150 bytes, three segments of 64, 64 and 22 bytes"


class VectorsTest(unittest.TestCase):

    def test_document_hasParametersAndThreeVectors(self):
        self.assertEqual(len(VECTORS), 3)
        self.assertIn(V3, VECTORS)

    def test_intermediateValues_areReproduced(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        data_key = unhex(PARAMS["data key"])
        self.assertEqual(data_key, b"a 32-byte data key for shard 001")
        self.assertEqual(unwrap_with_published_master_key(unhex(PARAMS["wrapped key"]), CONTEXT), data_key)
        parameters = (b"EKS\x01\x01" + int(PARAMS["segment size"]).to_bytes(4, "big") + unhex(PARAMS["salt"])
                      + unhex(PARAMS["nonce prefix"]) + enclave_kms.encode_context(CONTEXT))
        self.assertEqual(parameters.hex(), unhex(PARAMS["parameters"]).hex())
        digest = hashlib.sha256(parameters).digest()
        self.assertEqual(digest.hex(), PARAMS["digest"])
        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=unhex(PARAMS["salt"]),
                   info=b"enclave-kms shard 1" + digest).derive(data_key)
        self.assertEqual(okm[:32].hex(), PARAMS["segment key"])
        self.assertEqual(okm[32:].hex(), PARAMS["header key"])
        self.assertEqual(hmac.new(okm[32:], parameters, hashlib.sha256).hexdigest(), PARAMS["header tag"])
        header = read_shard_header(io.BytesIO(unhex(PARAMS["header"])))
        self.assertEqual((header.key_name, header.key_version, header.segment_size, header.context),
                         ("model-weights", 3, 64, CONTEXT))
        self.assertEqual(header.length, len(unhex(PARAMS["header"])))

    def test_everyVector_decryptsAsAStreamAndAtRandom(self):
        for name in VECTORS:
            with self.subTest(name):
                data = vector_file(name)
                v = BLOCKS[name]
                self.assertEqual(len(data), int(v["file length"]))
                self.assertEqual(hashlib.sha256(data).hexdigest(), v["file sha-256"])
                plaintext = vector_plaintext(name)
                got = decrypt_shard(io.BytesIO(data), context=CONTEXT, unwrap=unwrap_with_published_master_key)
                self.assertEqual(got, plaintext)
                with ShardReader(io.BytesIO(data), context=CONTEXT, unwrap=unwrap_with_published_master_key) as r:
                    self.assertEqual(r.size, len(plaintext))
                    self.assertEqual(b"".join(r.segments()), plaintext)

    def test_randomAccess_everyPositionAndLength_matches(self):
        plaintext = vector_plaintext(V3)
        with ShardReader(io.BytesIO(vector_file(V3)), context=CONTEXT, unwrap=unwrap_with_published_master_key) as r:
            for pos in range(0, len(plaintext) + 2):
                for n in (0, 1, 2, 63, 64, 65, 129, 200):
                    self.assertEqual(r.read(pos, n), plaintext[pos:pos + n], (pos, n))


class TamperTest(unittest.TestCase):
    DATA = vector_file(V3)
    H = len(unhex(PARAMS["header"]))
    C = 64 + 16

    def fails(self, data, reason, segment=None, reader=True):
        out = io.BytesIO()
        with self.assertRaises(ShardError) as cm:
            decrypt_shard(io.BytesIO(data), context=CONTEXT, out=out, unwrap=unwrap_with_published_master_key)
        self.assertEqual(cm.exception.reason, reason, str(cm.exception))
        self.assertEqual(cm.exception.segment, segment, str(cm.exception))
        released = out.getvalue()
        expected = 0 if segment is None else segment * 64
        self.assertEqual(released, vector_plaintext(V3)[:expected], "only the segments before the damage")
        if reader:
            with self.assertRaises(ShardError):
                with ShardReader(io.BytesIO(data), context=CONTEXT, unwrap=unwrap_with_published_master_key) as r:
                    r.read(0, 1 << 20)
        return cm.exception

    def flip(self, at, bit=1):
        b = bytearray(self.DATA)
        b[at] ^= bit
        return bytes(b)

    def test_headerParameterOrTagFlipped_failsTheHeaderTag(self):
        tag = 48 + len(enclave_kms.encode_context(CONTEXT))
        for at in (5, 9, 40, 41, 47, tag, tag + 31):  # segment size, salt, prefix, header tag
            with self.subTest(at=at):
                e = self.fails(self.flip(at), "HEADER_AUTHENTICATION_FAILED")
                self.assertIn("header fails authentication", str(e))

    def test_magicOrVersionFlipped_isNotAShardOrUnsupported(self):
        self.fails(self.flip(0), "NOT_A_SHARD")
        self.fails(self.flip(3, 2), "UNSUPPORTED_FORMAT")

    def test_eachSegmentFlipped_failsAtIt(self):
        for i in range(3):
            with self.subTest(segment=i):
                e = self.fails(self.flip(self.H + i * self.C + 5), "SEGMENT_AUTHENTICATION_FAILED", i, reader=True)
                self.assertIn(f"segment {i}", str(e))

    def test_truncatedAtASegmentBoundary_isTruncated(self):
        self.fails(self.DATA[:self.H + 2 * self.C], "TRUNCATED", 1)
        self.fails(self.DATA[:self.H + self.C], "TRUNCATED", 0)
        self.fails(self.DATA[:self.H], "TRUNCATED", 0)
        self.fails(self.DATA[:self.H + self.C + 7], "TRUNCATED", 1)
        self.fails(self.DATA[:self.H - 1], "TRUNCATED", None)

    def test_appendedAfterAFullFinalSegment_isTrailingData(self):
        v2 = vector_file("shard test vector 2: 128 bytes, two full segments (the last one full)")
        for extra in (b"\0", b"\0" * 16, b"\0" * 100):
            out = io.BytesIO()
            with self.assertRaises(ShardError) as cm:
                decrypt_shard(io.BytesIO(v2 + extra), context=CONTEXT, out=out, unwrap=unwrap_with_published_master_key)
            self.assertEqual((cm.exception.reason, cm.exception.segment), ("TRAILING_DATA", 1))
            self.assertEqual(out.getvalue(), bytes(range(64)))
            with self.assertRaises(ShardError) as cm:
                ShardReader(io.BytesIO(v2 + extra), context=CONTEXT, unwrap=unwrap_with_published_master_key)
            self.assertEqual(cm.exception.reason, "TRAILING_DATA")

    def test_segmentsSwapped_failsAtTheFirst(self):
        b = bytearray(self.DATA)
        s0, s1 = b[self.H:self.H + self.C], b[self.H + self.C:self.H + 2 * self.C]
        b[self.H:self.H + self.C], b[self.H + self.C:self.H + 2 * self.C] = s1, s0
        self.fails(bytes(b), "SEGMENT_AUTHENTICATION_FAILED", 0)

    def test_otherContext_isRefusedBeforeUnwrapping(self):
        calls = []
        with self.assertRaises(ShardError) as cm:
            decrypt_shard(io.BytesIO(self.DATA), context={"model": "other", "tier": "hot"},
                          unwrap=lambda w, c: calls.append(w))
        self.assertEqual(cm.exception.reason, "CONTEXT_MISMATCH")
        self.assertEqual(calls, [])


class ThroughKmsClientTest(unittest.TestCase):
    """The data key is unwrapped with the client's Decrypt: the request carries the
    header's envelope and context (a recording test double of the daemon answers)."""

    def test_decryptShard_path_unwrapsThroughDecrypt(self):
        server = RecordingServer()
        self.addCleanup(server.stop)
        server.reply("dev.enclavekms.Kms.Decrypt", {"key": "model-weights", "version": 3,
                                                    "plaintext": base64.b64encode(unhex(PARAMS["data key"])).decode()})
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "v3.eks")
            with open(path, "wb") as f:
                f.write(vector_file(V3))
            with KmsClient(server.path, timeout=5) as client:
                self.assertEqual(decrypt_shard(path, client, CONTEXT), vector_plaintext(V3))
                with open(os.path.join(d, "out"), "wb") as out:
                    self.assertEqual(decrypt_shard(path, client, CONTEXT, out), 150)
                with ShardReader(path, client, CONTEXT) as r:
                    self.assertEqual(r.read(60, 10), vector_plaintext(V3)[60:70])
        request = server.last()
        self.assertEqual(request["method"], "dev.enclavekms.Kms.Decrypt")
        self.assertEqual(request["parameters"], {"ciphertext": base64.b64encode(unhex(PARAMS["wrapped key"])).decode(),
                                                 "context": CONTEXT})


class CommandLineTest(unittest.TestCase):
    MODULE = str(support.CLIENT_DIR / "enclave_kms.py")

    def run_cli(self, server, *args):
        return subprocess.run([sys.executable, self.MODULE, "--socket", server.path, "--timeout", "5", *args],
                              capture_output=True, text=True, timeout=60)

    def test_decryptShard_writesThePlaintext_orNothingWhenDamaged(self):
        server = RecordingServer()
        self.addCleanup(server.stop)
        server.reply("dev.enclavekms.Kms.Decrypt", {"key": "model-weights", "version": 3,
                                                    "plaintext": base64.b64encode(unhex(PARAMS["data key"])).decode()})
        with tempfile.TemporaryDirectory() as d:
            good, bad, out = os.path.join(d, "good.eks"), os.path.join(d, "bad.eks"), os.path.join(d, "plain")
            data = vector_file(V3)
            with open(good, "wb") as f:
                f.write(data)
            with open(bad, "wb") as f:
                f.write(data[:-1] + bytes([data[-1] ^ 1]))
            ctx = ["--context", "model=llama-3-8b", "--context", "tier=hot"]
            r = self.run_cli(server, "decrypt-shard", good, out, *ctx)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout), {"key": "model-weights", "version": 3, "plaintext_bytes": 150,
                                                    "out": out})
            with open(out, "rb") as f:
                self.assertEqual(f.read(), vector_plaintext(V3))
            os.unlink(out)
            r = self.run_cli(server, "decrypt-shard", bad, out, *ctx)
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertEqual(json.loads(r.stderr)["reason"], "SEGMENT_AUTHENTICATION_FAILED")
            self.assertEqual(sorted(os.listdir(d)), ["bad.eks", "good.eks"], "no plaintext, no temporary file left")
            r = self.run_cli(server, "decrypt-shard", os.path.join(d, "missing.eks"), out, *ctx)
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn("No such file", r.stderr)


class MissingCryptographyTest(unittest.TestCase):

    def test_withoutCryptography_theModuleLoads_andShardsSayWhatIsMissing(self):
        script = (
            "import sys\n"
            "sys.modules['cryptography'] = None  # as if it were not installed\n"
            f"sys.path.insert(0, {str(support.CLIENT_DIR)!r})\n"
            "import enclave_kms\n"
            "enclave_kms.KmsClient('/nonexistent')\n"
            "try:\n"
            "    enclave_kms.decrypt_shard(__import__('io').BytesIO(bytes.fromhex(sys.argv[1])), "
            "context={'model': 'llama-3-8b', 'tier': 'hot'}, unwrap=lambda w, c: 1/0)\n"
            "except enclave_kms.MissingDependency as e:\n"
            "    print('MISSING:', e)\n")
        r = subprocess.run([sys.executable, "-c", script, vector_file(V3).hex()], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "MISSING: decrypting shard files needs the 'cryptography' package "
                                           "(pip install cryptography, or apt install python3-cryptography); "
                                           "the rest of enclave_kms works without it")
        self.assertTrue(issubclass(MissingDependency, ImportError))


if __name__ == "__main__":
    unittest.main()
