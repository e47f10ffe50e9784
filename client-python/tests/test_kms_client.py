"""KmsClient argument encoding and reply decoding, against a recording test double of
the daemon (the real daemon is exercised by the Java system tests through the CLI).

Each test checks the exact request: method name, parameter names, base64 values, and
that optional parameters left at None are not sent."""

import base64
import json
import os
import pickle
import subprocess
import sys
import unittest
from unittest import mock

import support
from support import RecordingServer

import enclave_kms
from enclave_kms import (DataKey, DecryptResult, KmsClient, KmsError, ProtocolError, VarlinkError)

KMS = "dev.enclavekms.Kms"
ADMIN = "dev.enclavekms.Admin"


def b64(data):
    return base64.b64encode(data).decode("ascii")


class KmsClientTestCase(unittest.TestCase):

    def setUp(self):
        self.server = RecordingServer()
        self.addCleanup(self.server.stop)
        self.client = KmsClient(self.server.path, timeout=5)
        self.addCleanup(self.client.close)

    def assertRequest(self, method, parameters=None):
        request = self.server.last()
        self.assertEqual(request["method"], method)
        self.assertEqual(request.get("parameters"), parameters)
        self.assertEqual(set(request) - {"method", "parameters"}, set())


class KmsMethodsTest(KmsClientTestCase):

    def test_generateDataKey_minimal_sendsOnlyKey(self):
        self.server.reply(f"{KMS}.GenerateDataKey",
                          {"key": "k", "version": 3, "plaintext": b64(b"\x01" * 32), "ciphertext": b64(b"ct")})
        dk = self.client.generate_data_key("k")
        self.assertRequest(f"{KMS}.GenerateDataKey", {"key": "k"})
        self.assertEqual(dk, DataKey("k", 3, b"\x01" * 32, b"ct"))

    def test_generateDataKey_full_sendsContextAndBytes(self):
        self.server.reply(f"{KMS}.GenerateDataKey",
                          {"key": "k", "version": 1, "plaintext": b64(b"p" * 16), "ciphertext": b64(b"c")})
        self.client.generate_data_key("k", context={"model": "m1", "tier": "gold"}, bytes=16)
        self.assertRequest(f"{KMS}.GenerateDataKey",
                           {"key": "k", "context": {"model": "m1", "tier": "gold"}, "bytes": 16})

    def test_certificateAuthorityAdministration_sendsTheIdlParameters(self):
        self.server.reply(f"{ADMIN}.RevokeCertificate", {"serial": "3c0f", "key": "ca", "version": 1,
                                                         "reason": "keyCompromise", "revoked": "2026-11-22T14:00:00Z",
                                                         "not_after": "2026-11-23T14:00:00Z", "already_revoked": False})
        r = self.client.revoke_certificate("3C:0F", "keyCompromise")
        self.assertRequest(f"{ADMIN}.RevokeCertificate", {"serial": "3C:0F", "reason": "keyCompromise"})
        self.assertEqual(r["key"], "ca")
        self.client.revoke_certificate("3c0f")
        self.assertRequest(f"{ADMIN}.RevokeCertificate", {"serial": "3c0f"})

        self.server.reply(f"{ADMIN}.GetCaCsr", {"key": "ca", "version": 2, "subject": "CN=x", "csr": "PEM"})
        self.assertEqual(self.client.get_ca_csr("ca", version=2, subject="CN=x"), "PEM")
        self.assertRequest(f"{ADMIN}.GetCaCsr", {"key": "ca", "version": 2, "subject": "CN=x"})

        self.server.reply(f"{ADMIN}.ImportCaCertificate", {"key": "ca", "version": 2, "subject": "CN=x",
                                                           "issuer": "CN=r", "not_after": "t", "root": "CN=r"})
        self.assertEqual(self.client.import_ca_certificate("ca", 2, "CHAIN")["root"], "CN=r")
        self.assertRequest(f"{ADMIN}.ImportCaCertificate", {"key": "ca", "version": 2, "certificate_chain": "CHAIN"})

        self.server.reply(f"{KMS}.GetCrl", {"key": "ca", "crls": [], "pem": ""})
        self.assertEqual(self.client.get_crl("ca")["crls"], [])
        self.assertRequest(f"{KMS}.GetCrl", {"key": "ca"})

    def test_certificates_sendTheIdlParameters(self):
        self.server.reply(f"{KMS}.GetCaCertificates", {"key": "ca", "algorithm": "EC_P256_SHA256",
                                                       "certificates": [], "pem": "ROOTS"})
        self.assertEqual(self.client.get_ca_certificates("ca")["pem"], "ROOTS")
        self.assertRequest(f"{KMS}.GetCaCertificates", {"key": "ca"})

        self.server.reply(f"{KMS}.IssueCertificate", {"key": "ca", "version": 1, "certificate": "CERT"})
        self.assertEqual(self.client.issue_certificate("ca", "CSR")["certificate"], "CERT")
        self.assertRequest(f"{KMS}.IssueCertificate", {"key": "ca", "csr": "CSR"})
        self.client.issue_certificate("ca", "CSR", ttl_seconds=3600, profile="client")
        self.assertRequest(f"{KMS}.IssueCertificate", {"key": "ca", "csr": "CSR", "ttl_seconds": 3600,
                                                       "profile": "client"})

        self.server.reply(f"{KMS}.IssueTlsCertificate", {"key": "web", "version": 1, "pkcs11_uri": "pkcs11:x"})
        self.assertEqual(self.client.issue_tls_certificate("web", "ca")["pkcs11_uri"], "pkcs11:x")
        self.assertRequest(f"{KMS}.IssueTlsCertificate", {"key": "web", "ca": "ca"})
        self.client.issue_tls_certificate("web", "ca", sans=["DNS:web.acme.internal"], common_name="web",
                                          ttl_seconds=600)
        self.assertRequest(f"{KMS}.IssueTlsCertificate", {"key": "web", "ca": "ca", "sans": ["DNS:web.acme.internal"],
                                                          "common_name": "web", "ttl_seconds": 600})

        self.server.fail(f"{KMS}.IssueCertificate", f"{KMS}.CertificateRefused",
                         {"reason": "SAN_NOT_ALLOWED", "message": "DNS:evil is not allowed"})
        with self.assertRaises(enclave_kms.CertificateRefused) as refused:
            self.client.issue_certificate("ca", "CSR")
        self.assertEqual(refused.exception.parameters["reason"], "SAN_NOT_ALLOWED")

    def test_dataKeyRepr_hidesPlaintext(self):
        dk = DataKey("k", 1, b"SECRET-BYTES", b"ct")
        self.assertNotIn("SECRET", repr(dk))
        self.assertNotIn("SECRET", repr(enclave_kms.Decrypted("k", 1, b"SECRET-BYTES")))
        self.assertNotIn("SECRET", repr(DecryptResult(plaintext=b"SECRET-BYTES")))

    def test_generateDataKeys_returnsOneDataKeyPerEntry(self):
        self.server.reply(f"{KMS}.GenerateDataKeys", {"key": "k", "version": 2, "keys": [
            {"plaintext": b64(b"a"), "ciphertext": b64(b"A")},
            {"plaintext": b64(b"b"), "ciphertext": b64(b"B")}]})
        keys = self.client.generate_data_keys("k", 2, context={"model": "m"})
        self.assertRequest(f"{KMS}.GenerateDataKeys", {"key": "k", "count": 2, "context": {"model": "m"}})
        self.assertEqual(keys, [DataKey("k", 2, b"a", b"A"), DataKey("k", 2, b"b", b"B")])
        self.client.generate_data_keys("k", 1, bytes=64)
        self.assertRequest(f"{KMS}.GenerateDataKeys", {"key": "k", "count": 1, "bytes": 64})

    def test_encrypt_sendsBase64Plaintext(self):
        self.server.reply(f"{KMS}.Encrypt", {"key": "k", "version": 1, "ciphertext": b64(b"\x00envelope")})
        plaintext = bytes(range(256))
        out = self.client.encrypt("k", plaintext)
        self.assertRequest(f"{KMS}.Encrypt", {"key": "k", "plaintext": b64(plaintext)})
        self.assertEqual(out, enclave_kms.Encrypted("k", 1, b"\x00envelope"))
        self.client.encrypt("k", bytearray(b"x"), context={"a": "b"})
        self.assertRequest(f"{KMS}.Encrypt", {"key": "k", "plaintext": "eA==", "context": {"a": "b"}})

    def test_encrypt_emptyPlaintext_isSentAsEmptyString(self):
        self.server.reply(f"{KMS}.Encrypt", {"key": "k", "version": 1, "ciphertext": b64(b"c")})
        self.client.encrypt("k", b"")
        self.assertRequest(f"{KMS}.Encrypt", {"key": "k", "plaintext": ""})

    def test_encrypt_strPlaintext_isRejected(self):
        with self.assertRaises(TypeError):
            self.client.encrypt("k", "text")
        self.assertEqual(self.server.requests, [])

    def test_decrypt_roundTripsBase64(self):
        self.server.reply(f"{KMS}.Decrypt", {"key": "k", "version": 4, "plaintext": b64(b"secret")})
        out = self.client.decrypt(b"\xffenvelope", context={"model": "m"})
        self.assertRequest(f"{KMS}.Decrypt", {"ciphertext": b64(b"\xffenvelope"), "context": {"model": "m"}})
        self.assertEqual((out.key, out.version, out.plaintext), ("k", 4, b"secret"))
        self.client.decrypt(b"c")
        self.assertRequest(f"{KMS}.Decrypt", {"ciphertext": b64(b"c")})

    def test_decryptBatch_mixesResultsAndErrors(self):
        self.server.reply(f"{KMS}.DecryptBatch", {"results": [
            {"plaintext": b64(b"one"), "key": "k", "version": 1},
            {"error": "DecryptionFailed", "message": "decryption failed"}]})
        results = self.client.decrypt_batch([b"c1", b"c2"])
        self.assertRequest(f"{KMS}.DecryptBatch", {"ciphertexts": [b64(b"c1"), b64(b"c2")]})
        self.assertTrue(results[0].ok)
        self.assertEqual((results[0].plaintext, results[0].key, results[0].version), (b"one", "k", 1))
        self.assertFalse(results[1].ok)
        self.assertEqual((results[1].error, results[1].message, results[1].plaintext),
                         ("DecryptionFailed", "decryption failed", None))
        self.client.decrypt_batch([b"c"], context={"t": "x"})
        self.assertRequest(f"{KMS}.DecryptBatch", {"ciphertexts": [b64(b"c")], "context": {"t": "x"}})

    def test_decryptBatch_singleBytes_isRejected(self):
        with self.assertRaises(TypeError):
            self.client.decrypt_batch(b"not-a-list")

    def test_sign_messageOrDigest(self):
        self.server.reply(f"{KMS}.Sign", {"key": "s", "version": 2, "algorithm": "EC_P256_SHA256",
                                          "signature": b64(b"sig")})
        sig = self.client.sign("s", message=b"hello")
        self.assertRequest(f"{KMS}.Sign", {"key": "s", "message": b64(b"hello")})
        self.assertEqual(sig, enclave_kms.Signature("s", 2, "EC_P256_SHA256", b"sig"))
        self.client.sign("s", digest=b"\x00" * 32)
        self.assertRequest(f"{KMS}.Sign", {"key": "s", "digest": b64(b"\x00" * 32)})

    def test_sign_needsExactlyOneOfMessageAndDigest(self):
        for kwargs in ({}, {"message": b"m", "digest": b"d"}):
            with self.assertRaises(ValueError):
                self.client.sign("s", **kwargs)
        self.assertEqual(self.server.requests, [])

    def test_verify_sendsVersionAndSignature(self):
        self.server.reply(f"{KMS}.Verify", {"valid": False})
        self.assertIs(self.client.verify("s", 2, b"sig", message=b"m"), False)
        self.assertRequest(f"{KMS}.Verify",
                           {"key": "s", "version": 2, "signature": b64(b"sig"), "message": b64(b"m")})
        self.server.reply(f"{KMS}.Verify", {"valid": True})
        self.assertIs(self.client.verify("s", 1, b"sig", digest=b"d"), True)
        self.assertRequest(f"{KMS}.Verify",
                           {"key": "s", "version": 1, "signature": b64(b"sig"), "digest": b64(b"d")})

    def test_getPublicKey_versionOptional(self):
        pem = "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"
        self.server.reply(f"{KMS}.GetPublicKey", {"key": "s", "version": 1, "algorithm": "ED25519", "pem": pem})
        self.assertEqual(self.client.get_public_key("s"), enclave_kms.PublicKey("s", 1, "ED25519", pem))
        self.assertRequest(f"{KMS}.GetPublicKey", {"key": "s"})
        self.client.get_public_key("s", version=1)
        self.assertRequest(f"{KMS}.GetPublicKey", {"key": "s", "version": 1})

    def test_getPublicKeys_returnsEveryVersion(self):
        pem1 = "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"
        pem2 = "-----BEGIN PUBLIC KEY-----\nAQ==\n-----END PUBLIC KEY-----\n"
        self.server.reply(f"{KMS}.GetPublicKeys", {"key": "s", "algorithm": "ED25519", "versions": [
            {"version": 1, "state": "ENABLED", "primary": True, "pem": pem1},
            {"version": 2, "state": "PENDING", "primary": False, "pem": pem2}]})
        keys = self.client.get_public_keys("s")
        self.assertRequest(f"{KMS}.GetPublicKeys", {"key": "s"})
        self.assertEqual(keys, enclave_kms.PublicKeys("s", "ED25519", [
            enclave_kms.VersionPublicKey(1, "ENABLED", True, pem1),
            enclave_kms.VersionPublicKey(2, "PENDING", False, pem2)]))

    def test_getPublicKeys_entryWithoutPrimary_isProtocolError(self):
        self.server.reply(f"{KMS}.GetPublicKeys", {"key": "s", "algorithm": "ED25519", "versions": [
            {"version": 1, "state": "ENABLED", "pem": "x"}]})
        with self.assertRaises(ProtocolError):
            self.client.get_public_keys("s")

    def test_reEncrypt_minimal_sendsCiphertextOnly(self):
        self.server.reply(f"{KMS}.ReEncrypt", {"key": "k", "version": 4, "source_key": "k", "source_version": 2,
                                               "rewrapped": True, "ciphertext": b64(b"new")})
        out = self.client.re_encrypt(b"\xffold")
        self.assertRequest(f"{KMS}.ReEncrypt", {"ciphertext": b64(b"\xffold")})
        self.assertEqual(out, enclave_kms.ReEncrypted("k", 4, "k", 2, True, b"new"))

    def test_reEncrypt_full_sendsContextKeyAndNewContext(self):
        self.server.reply(f"{KMS}.ReEncrypt", {"key": "k2", "version": 1, "source_key": "k", "source_version": 3,
                                               "rewrapped": True, "ciphertext": b64(b"new")})
        self.client.re_encrypt(b"old", context={"model": "m"}, key="k2", new_context={"tier": "gold"})
        self.assertRequest(f"{KMS}.ReEncrypt", {"ciphertext": b64(b"old"), "context": {"model": "m"}, "key": "k2",
                                                "new_context": {"tier": "gold"}})

    def test_reEncrypt_alreadyCurrent_rewrappedFalse(self):
        self.server.reply(f"{KMS}.ReEncrypt", {"key": "k", "version": 4, "source_key": "k", "source_version": 4,
                                               "rewrapped": False, "ciphertext": b64(b"same")})
        out = self.client.re_encrypt(b"same")
        self.assertIs(out.rewrapped, False)
        self.assertEqual(out.ciphertext, b"same")

    def test_reEncryptBatch_mixesResultsAndErrors(self):
        self.server.reply(f"{KMS}.ReEncryptBatch", {"results": [
            {"key": "k", "version": 4, "source_key": "k", "source_version": 1, "rewrapped": True,
             "ciphertext": b64(b"new")},
            {"error": "KeyVersionDestroyed", "message": "version 2 was destroyed", "source_key": "k",
             "source_version": 2}]})
        results = self.client.re_encrypt_batch([b"c1", b"c2"], context={"model": "m"}, key="k")
        self.assertRequest(f"{KMS}.ReEncryptBatch", {"ciphertexts": [b64(b"c1"), b64(b"c2")],
                                                     "context": {"model": "m"}, "key": "k"})
        self.assertTrue(results[0].ok)
        self.assertEqual((results[0].ciphertext, results[0].rewrapped, results[0].source_version), (b"new", True, 1))
        self.assertFalse(results[1].ok)
        self.assertEqual((results[1].error, results[1].source_version, results[1].ciphertext),
                         ("KeyVersionDestroyed", 2, None))
        self.server.reply(f"{KMS}.ReEncryptBatch", {"results": [{"error": "DecryptionFailed", "message": "m"}]})
        self.client.re_encrypt_batch([b"c"])
        self.assertRequest(f"{KMS}.ReEncryptBatch", {"ciphertexts": [b64(b"c")]})

    def test_reEncryptBatch_wrongNumberOfResults_isProtocolError(self):
        self.server.reply(f"{KMS}.ReEncryptBatch", {"results": []})
        with self.assertRaises(ProtocolError):
            self.client.re_encrypt_batch([b"c"])

    def test_reEncryptBatch_singleBytes_isRejected(self):
        with self.assertRaises(TypeError):
            self.client.re_encrypt_batch(b"not-a-list")
        self.assertEqual(self.server.requests, [])

    def test_status_sendsNoParameters_returnsDict(self):
        status = {"version": "0.1", "uptime_seconds": 5, "keys": 0, "key_versions": 0, "orphans": [],
                  "missing": [], "enclave": {"kind": "pkcs11", "label": "t", "manufacturer": "SoftHSM",
                                             "model": "SoftHSM v2", "serial": "1"}}
        self.server.reply(f"{KMS}.Status", status)
        self.assertEqual(self.client.status(), status)
        self.assertRequest(f"{KMS}.Status", None)

    def test_sessionCalls_sendTheirParameters(self):
        sid = "ab" * 24
        self.server.reply(f"{KMS}.OpenSession", {"session": sid, "tenant": "acme",
                                                 "expires": "2026-01-01T01:00:00Z", "ttl_seconds": 600})
        self.assertEqual(self.client.open_session(600)["session"], sid)
        self.assertRequest(f"{KMS}.OpenSession", {"ttl_seconds": 600})
        self.server.reply(f"{KMS}.PutSessionMaterial", {"name": "evk", "size": 13, "final": True})
        self.assertEqual(self.client.put_session_material(sid, "evk", b"abc", 10, final=True), 13)
        self.assertRequest(f"{KMS}.PutSessionMaterial",
                           {"session": sid, "name": "evk", "data": b64(b"abc"), "offset": 10, "final": True})
        self.server.reply(f"{KMS}.CloseSession", {})
        self.client.close_session(sid)
        self.assertRequest(f"{KMS}.CloseSession", {"session": sid})
        self.server.reply(f"{ADMIN}.RevokeSessions", {"tenant": "acme", "revoked": 2})
        self.assertEqual(self.client.revoke_sessions("acme"), 2)
        self.assertRequest(f"{ADMIN}.RevokeSessions", {"tenant": "acme"})

    def test_badArgumentTypes_areRejectedBeforeSending(self):
        cases = [lambda: self.client.generate_data_key(1),
                 lambda: self.client.generate_data_key("k", bytes=True),
                 lambda: self.client.generate_data_key("k", context={"a": 1}),
                 lambda: self.client.generate_data_key("k", context=[("a", "b")]),
                 lambda: self.client.generate_data_keys("k", "3"),
                 lambda: self.client.decrypt("Y2lwaGVy"),
                 lambda: self.client.create_key("n", "ENCRYPT", required_context="model")]
        for case in cases:
            with self.assertRaises(TypeError):
                case()
        self.assertEqual(self.server.requests, [])


class AdminAndServiceMethodsTest(KmsClientTestCase):
    KEY = {"name": "n", "purpose": "ENCRYPT", "algorithm": "AES_256_GCM", "description": "",
           "created": "2026-01-01T00:00:00Z", "primary_version": 1, "required_context": [],
           "versions": [{"version": 1, "state": "ENABLED", "created": "2026-01-01T00:00:00Z",
                         "object_id": "00ff"}]}

    def test_createKey_minimal(self):
        self.server.reply(f"{ADMIN}.CreateKey", {"key": self.KEY})
        self.assertEqual(self.client.create_key("n", "ENCRYPT"), self.KEY)
        self.assertRequest(f"{ADMIN}.CreateKey", {"name": "n", "purpose": "ENCRYPT"})

    def test_createKey_full(self):
        self.server.reply(f"{ADMIN}.CreateKey", {"key": self.KEY})
        self.client.create_key("n", "SIGN", algorithm="ED25519", description="d",
                               required_context=("model", "tier"))
        self.assertRequest(f"{ADMIN}.CreateKey", {"name": "n", "purpose": "SIGN", "algorithm": "ED25519",
                                                  "description": "d", "required_context": ["model", "tier"]})

    def test_createKey_lifecyclePolicy(self):
        self.server.reply(f"{ADMIN}.CreateKey", {"key": self.KEY})
        self.client.create_key("n", "ENCRYPT", rotation_period_seconds=7776000, destroy_wait_days=14)
        self.assertRequest(f"{ADMIN}.CreateKey", {"name": "n", "purpose": "ENCRYPT",
                                                  "rotation_period_seconds": 7776000, "destroy_wait_days": 14})

    def test_updateKeyPolicy_zeroIsSent_noneIsNot(self):
        self.server.reply(f"{ADMIN}.UpdateKeyPolicy", {"key": self.KEY})
        self.assertEqual(self.client.update_key_policy("n", rotation_period_seconds=0), self.KEY)
        self.assertRequest(f"{ADMIN}.UpdateKeyPolicy", {"name": "n", "rotation_period_seconds": 0})
        self.client.update_key_policy("n", destroy_wait_days=21)
        self.assertRequest(f"{ADMIN}.UpdateKeyPolicy", {"name": "n", "destroy_wait_days": 21})

    def test_rotateKey_pendingSentOnlyWhenTrue(self):
        self.server.reply(f"{ADMIN}.RotateKey", {"key": self.KEY})
        self.assertEqual(self.client.rotate_key("n"), self.KEY)
        self.assertRequest(f"{ADMIN}.RotateKey", {"name": "n"})
        self.client.rotate_key("n", pending=True)
        self.assertRequest(f"{ADMIN}.RotateKey", {"name": "n", "pending": True})
        with self.assertRaises(TypeError):
            self.client.rotate_key("n", pending="yes")

    def test_versionStateMethods_sendNameAndVersion(self):
        for method, call in (("PromoteKeyVersion", self.client.promote_key_version),
                             ("EnableKeyVersion", self.client.enable_key_version),
                             ("DisableKeyVersion", self.client.disable_key_version),
                             ("RevokeKeyVersion", self.client.revoke_key_version),
                             ("ScheduleKeyVersionDestruction", self.client.schedule_key_version_destruction),
                             ("CancelKeyVersionDestruction", self.client.cancel_key_version_destruction)):
            with self.subTest(method=method):
                self.server.reply(f"{ADMIN}.{method}", {"key": self.KEY})
                self.assertEqual(call("n", 3), self.KEY)
                self.assertRequest(f"{ADMIN}.{method}", {"name": "n", "version": 3})

    def test_scheduleKeyVersionDestruction_waitDays(self):
        self.server.reply(f"{ADMIN}.ScheduleKeyVersionDestruction", {"key": self.KEY})
        self.client.schedule_key_version_destruction("n", 2, wait_days=14)
        self.assertRequest(f"{ADMIN}.ScheduleKeyVersionDestruction", {"name": "n", "version": 2, "wait_days": 14})

    def test_lifecycleMethods_badArgumentTypes_areRejectedBeforeSending(self):
        for case in (lambda: self.client.enable_key_version("n", "3"),
                     lambda: self.client.revoke_key_version("n", True),
                     lambda: self.client.schedule_key_version_destruction("n", 1, wait_days="7"),
                     lambda: self.client.update_key_policy("n", rotation_period_seconds=3600.0)):
            with self.assertRaises(TypeError):
                case()
        self.assertEqual(self.server.requests, [])

    def test_listKeys(self):
        summary = {"name": "n", "purpose": "ENCRYPT", "algorithm": "AES_256_GCM", "primary_version": 1,
                   "versions": 1}
        self.server.reply(f"{ADMIN}.ListKeys", {"keys": [summary]})
        self.assertEqual(self.client.list_keys(), [summary])
        self.assertRequest(f"{ADMIN}.ListKeys", None)

    def test_describeKey(self):
        self.server.reply(f"{ADMIN}.DescribeKey", {"key": self.KEY})
        self.assertEqual(self.client.describe_key("n"), self.KEY)
        self.assertRequest(f"{ADMIN}.DescribeKey", {"name": "n"})

    def test_getInfo_and_getInterfaceDescription(self):
        info = {"vendor": "enclave-kms", "product": "enclave-kms", "version": "0", "url": "u",
                "interfaces": ["org.varlink.service", KMS, ADMIN]}
        self.server.reply("org.varlink.service.GetInfo", info)
        self.assertEqual(self.client.get_info(), info)
        self.assertRequest("org.varlink.service.GetInfo", None)
        self.server.reply("org.varlink.service.GetInterfaceDescription", {"description": "interface x"})
        self.assertEqual(self.client.get_interface_description(KMS), "interface x")
        self.assertRequest("org.varlink.service.GetInterfaceDescription", {"interface": KMS})


class ErrorMappingTest(KmsClientTestCase):
    TYPED = ["KeyNotFound", "KeyVersionNotFound", "InvalidParameter", "PermissionDenied",
             "DecryptionFailed", "InvalidKeyUsage", "KeyVersionUnusable", "EnclaveUnavailable",
             "InternalError", "InvalidRequest", "RequestTooLarge", "TooManyConnections",
             "KeyAlreadyExists", "KeyVersionDestroyed", "InvalidStateTransition", "AuditUnavailable", "PolicyInvalid", "CertificateRefused",
             "SessionNotFound", "SessionMaterialNotFound", "SessionLimitExceeded", "CertificateNotFound"]

    def test_everyKmsError_raisesItsTypedException(self):
        for interface in (KMS, ADMIN):
            for short in self.TYPED:
                with self.subTest(error=f"{interface}.{short}"):
                    params = {"message": f"{short} happened", "key": "k"}
                    self.server.fail(f"{KMS}.Status", f"{interface}.{short}", params)
                    with self.assertRaises(KmsError) as cm:
                        self.client.status()
                    e = cm.exception
                    self.assertIs(type(e), getattr(enclave_kms, short))
                    self.assertEqual(e.error, f"{interface}.{short}")
                    self.assertEqual(e.parameters, params)
                    self.assertEqual(e.message, f"{short} happened")
                    self.assertEqual(str(e), f"{interface}.{short}: {short} happened")

    def test_everyErrorOfBothIdls_hasItsTypedException(self):
        # The shipped IDL files decide: an error added there without a class here fails this test.
        idl_dir = support.CLIENT_DIR.parent / "hsm-daemon/src/main/resources/varlink"
        declared = set()
        for name in ("dev.enclavekms.Kms.varlink", "dev.enclavekms.Admin.varlink"):
            for line in (idl_dir / name).read_text(encoding="utf-8").splitlines():
                if line.startswith("error "):
                    declared.add(line.split()[1])
        self.assertEqual(declared, set(self.TYPED))

    def test_keyVersionDestroyed_keepsWhenItWasDestroyed(self):
        params = {"key": "k", "version": 1, "destroyed": "2026-03-15T00:00:00Z", "message": "destroyed"}
        self.server.fail(f"{KMS}.ReEncrypt", f"{KMS}.KeyVersionDestroyed", params)
        with self.assertRaises(enclave_kms.KeyVersionDestroyed) as cm:
            self.client.re_encrypt(b"c")
        self.assertEqual(cm.exception.parameters["destroyed"], "2026-03-15T00:00:00Z")

    def test_invalidStateTransition_namesTheState(self):
        params = {"key": "k", "version": 3, "state": "REVOKED", "message": "version 3 is REVOKED"}
        self.server.fail(f"{ADMIN}.EnableKeyVersion", f"{ADMIN}.InvalidStateTransition", params)
        with self.assertRaises(enclave_kms.InvalidStateTransition) as cm:
            self.client.enable_key_version("k", 3)
        self.assertEqual(cm.exception.parameters["state"], "REVOKED")

    def test_unknownKmsErrorName_isPlainVarlinkError(self):
        self.server.fail(f"{KMS}.Status", f"{KMS}.SomethingNew", {"message": "m"})
        with self.assertRaises(VarlinkError) as cm:
            self.client.status()
        self.assertIs(type(cm.exception), VarlinkError)

    def test_sameShortNameOfOtherInterface_isPlainVarlinkError(self):
        self.server.fail(f"{KMS}.Status", "org.varlink.service.InvalidParameter", {"parameter": "x"})
        with self.assertRaises(VarlinkError) as cm:
            self.client.status()
        self.assertIs(type(cm.exception), VarlinkError)
        self.assertEqual(cm.exception.parameters, {"parameter": "x"})
        self.assertEqual(cm.exception.message, "org.varlink.service.InvalidParameter")

    def test_typedError_keepsConnectionUsable(self):
        self.server.fail(f"{KMS}.Decrypt", f"{KMS}.DecryptionFailed", {"message": "decryption failed"})
        self.server.reply(f"{KMS}.Status", {"version": "x"})
        with self.assertRaises(enclave_kms.DecryptionFailed):
            self.client.decrypt(b"bad")
        self.assertEqual(self.client.status(), {"version": "x"})
        self.assertEqual(len(self.server.requests), 2)

    def test_errors_arePicklable(self):
        e = enclave_kms.KeyNotFound(f"{KMS}.KeyNotFound", {"key": "k", "message": "no key"})
        copy = pickle.loads(pickle.dumps(e))
        self.assertIs(type(copy), enclave_kms.KeyNotFound)
        self.assertEqual((copy.error, copy.parameters), (e.error, e.parameters))

    def test_replyMissingField_isProtocolError(self):
        self.server.reply(f"{KMS}.Decrypt", {"key": "k", "version": 1})
        with self.assertRaises(ProtocolError):
            self.client.decrypt(b"c")
        self.server.reply(f"{KMS}.Decrypt", {"key": "k", "version": 1, "plaintext": "not base64!"})
        with self.assertRaises(ProtocolError):
            self.client.decrypt(b"c")


class ConnectionHandlingTest(unittest.TestCase):

    def test_socketPath_argumentThenEnvironmentThenDefault(self):
        with mock.patch.dict(os.environ, {enclave_kms.SOCKET_ENV: "/tmp/from-env.sock"}):
            self.assertEqual(KmsClient("/tmp/arg.sock").socket_path, "/tmp/arg.sock")
            self.assertEqual(KmsClient().socket_path, "/tmp/from-env.sock")
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(KmsClient().socket_path, "/run/enclave-kms/kms.sock")

    def test_brokenConnection_isReplacedOnNextCall_failedCallNotRetried(self):
        server = RecordingServer()
        self.addCleanup(server.stop)
        server.script[f"{KMS}.Status"] = [None]  # hang up
        with KmsClient(server.path, timeout=5) as client:
            with self.assertRaises(ProtocolError):
                client.status()
            self.assertEqual(len(server.requests), 1)
            server.reply(f"{KMS}.Status", {"version": "again"})
            self.assertEqual(client.status(), {"version": "again"})

    def test_constructor_doesNotConnect(self):
        KmsClient("/nonexistent/kms.sock")  # no error until the first call
        with self.assertRaises(FileNotFoundError):
            KmsClient("/nonexistent/kms.sock").status()


class CommandLineTest(unittest.TestCase):
    MODULE = str(support.CLIENT_DIR / "enclave_kms.py")

    def setUp(self):
        self.server = RecordingServer()
        self.addCleanup(self.server.stop)

    def run_cli(self, *args, module=False, env=None):
        cmd = [sys.executable, "-m", "enclave_kms"] if module else [sys.executable, self.MODULE]
        return subprocess.run(cmd + list(args), cwd=str(support.CLIENT_DIR), capture_output=True,
                              text=True, timeout=10, env=env)

    def test_generateDataKey_printsJson(self):
        self.server.reply(f"{KMS}.GenerateDataKey",
                          {"key": "k", "version": 1, "plaintext": b64(b"p"), "ciphertext": b64(b"c")})
        r = self.run_cli("--socket", self.server.path, "generate-data-key", "k",
                         "--context", "model=m1", "--context", "tier=a=b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"key": "k", "version": 1, "plaintext": b64(b"p"),
                                                "ciphertext": b64(b"c")})
        self.assertEqual(self.server.last()["parameters"], {"key": "k", "context": {"model": "m1", "tier": "a=b"}})

    def test_decrypt_asModule_socketFromEnvironment(self):
        self.server.reply(f"{KMS}.Decrypt", {"key": "k", "version": 2, "plaintext": b64(b"secret")})
        env = dict(os.environ, ENCLAVE_KMS_SOCKET=self.server.path)
        r = self.run_cli("decrypt", b64(b"envelope"), module=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"key": "k", "version": 2, "plaintext": b64(b"secret")})
        self.assertEqual(self.server.last()["parameters"], {"ciphertext": b64(b"envelope")})

    def test_status_printsDaemonReply(self):
        self.server.reply(f"{KMS}.Status", {"version": "1", "keys": 3})
        r = self.run_cli("--socket", self.server.path, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"version": "1", "keys": 3})

    def test_varlinkError_exitsOneWithJsonOnStderr(self):
        self.server.fail(f"{KMS}.Decrypt", f"{KMS}.DecryptionFailed", {"message": "decryption failed"})
        r = self.run_cli("--socket", self.server.path, "decrypt", b64(b"x"), "--context", "a=b")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(json.loads(r.stderr), {"error": f"{KMS}.DecryptionFailed",
                                                "parameters": {"message": "decryption failed"}})

    def test_badArguments_exitTwoWithoutCalling(self):
        for args in (["decrypt", "not base64!"], ["generate-data-key", "k", "--context", "novalue"],
                     ["generate-data-key", "k", "--context", "a=1", "--context", "a=2"], []):
            with self.subTest(args=args):
                r = self.run_cli("--socket", self.server.path, *args)
                self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(self.server.requests, [])

    def test_unreachableSocket_exitsThree(self):
        r = self.run_cli("--socket", "/nonexistent/kms.sock", "status")
        self.assertEqual(r.returncode, 3)
        self.assertIn("/nonexistent/kms.sock", r.stderr)


if __name__ == "__main__":
    unittest.main()
