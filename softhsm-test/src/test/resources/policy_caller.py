"""Runs varlink calls against enclave-kmsd as whatever user runs it (the authorisation
matrix test starts it under other uids with runuser). Arguments: the directory holding
enclave_kms.py, the socket. Standard input: one JSON call per line,
{"method": ..., "parameters": {...}}. Standard output: first {"uid": N, "gid": N}, then
one JSON result per call, {"reply": {...}} or {"error": NAME, "parameters": {...}}."""
import json
import os
import sys

sys.path.insert(0, sys.argv[1])
import enclave_kms  # noqa: E402

client = enclave_kms.KmsClient(sys.argv[2], timeout=60)
print(json.dumps({"uid": os.getuid(), "gid": os.getgid()}), flush=True)
for line in sys.stdin:
    if not line.strip():
        continue
    call = json.loads(line)
    try:
        out = {"reply": client.call(call["method"], call.get("parameters") or None)}
    except enclave_kms.VarlinkError as e:
        out = {"error": e.error, "parameters": e.parameters}
    print(json.dumps(out), flush=True)
client.close()
