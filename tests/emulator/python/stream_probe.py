"""azure-ai-ml's `ml_client.jobs.stream(name)` against the emulator: workspace discovery
(`discoveryUrl`), run-history run details, and the job's log read through its SAS URL.

Run by `cargo test --test integration azure_ai_ml -- --ignored` (tests/emulator/runs.rs), or by
hand against `amlspec emulator --tls-self-signed CA.pem` in auto mode:

    python -m venv /tmp/venv && /tmp/venv/bin/pip install azure-ai-ml==1.35.2 azure-identity
    AMLSPEC_ADMIN_KEY=$(cat ADMIN_KEY_FILE) /tmp/venv/bin/python stream_probe.py PORT CA.pem

The emulator must run jobs in auto mode with a Running phase of several seconds (e.g.
`--job-phase-seconds 1 --job-running-seconds 6`). The admin key (for failing the second job)
comes from the AMLSPEC_ADMIN_KEY environment variable, never from the command line.
It prints what `jobs.stream` prints, checks the lines the emulator's jobs write, and ends
with "STREAM OK".
"""
import contextlib
import io
import os
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
CA = sys.argv[2]
BASE = f"https://127.0.0.1:{PORT}"
os.environ["REQUESTS_CA_BUNDLE"] = CA
# Poll run history every second (read when azure-ai-ml is imported).
os.environ["AZUREML_RUN_POLLING_INTERVAL_MIN"] = "1"
ADMIN_KEY = os.environ.get("AMLSPEC_ADMIN_KEY", "")

# *.localhost -> 127.0.0.1; any other name is refused, so nothing leaves the machine.
_orig = socket.getaddrinfo


def guarded(host, *a, **k):
    if host.endswith(".localhost") or host in ("localhost", "127.0.0.1"):
        return _orig("127.0.0.1", *a, **k)
    raise OSError(f"probe refuses to resolve {host}")


socket.getaddrinfo = guarded

import requests  # noqa: E402
from azure.ai.ml import MLClient, command  # noqa: E402
from azure.ai.ml.entities import Environment  # noqa: E402
from azure.ai.ml.exceptions import JobException  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402

TENANT = "11111111-1111-1111-1111-111111111111"
SUB = "00000000-0000-0000-0000-000000000001"
cred = ClientSecretCredential(TENANT, "22222222-2222-2222-2222-222222222222", "emulator-client-secret",
                              authority=BASE, disable_instance_discovery=True)
H = {"Authorization": f"Bearer {cred.get_token(f'{BASE}/.default').token}"}
RG = f"/subscriptions/{SUB}/resourceGroups/stream-rg"
WS = f"{RG}/providers/Microsoft.MachineLearningServices/workspaces/stream-ws"


def put(path, body):
    r = requests.put(f"{BASE}{path}", json=body, headers=H)
    assert r.status_code < 300, (path, r.status_code, r.text)


def wait_succeeded(path):
    for _ in range(100):
        r = requests.get(f"{BASE}{path}", headers=H)
        if r.status_code == 200 and r.json().get("properties", {}).get("provisioningState") == "Succeeded":
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} did not reach Succeeded")


put(f"{RG}?api-version=2021-04-01", {"location": "eastus"})
st = f"{RG}/providers/Microsoft.Storage/storageAccounts/streamstore"
kv = f"{RG}/providers/Microsoft.KeyVault/vaults/stream-kv"
put(f"{st}?api-version=2023-01-01", {"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})
wait_succeeded(f"{st}?api-version=2023-01-01")
put(f"{kv}?api-version=2023-07-01", {"location": "eastus", "properties": {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"}}})
put(f"{WS}?api-version=2026-07-01", {"location": "eastus", "properties": {"storageAccount": st, "keyVault": kv}})
wait_succeeded(f"{WS}?api-version=2026-07-01")

ml = MLClient(credential=cred, subscription_id=SUB, resource_group_name="stream-rg", workspace_name="stream-ws",
              cloud="AmlspecEmulator",
              cloud_metadata={"azure_portal": f"{BASE}/", "resource_manager": f"{BASE}/", "active_directory": f"{BASE}/",
                              "aml_resource_id": f"{BASE}/", "storage_endpoint": f"core.localhost:{PORT}",
                              "registry_discovery_endpoint": f"{BASE}/"},
              enable_telemetry=False, show_progress=False)
ml.environments.create_or_update(Environment(name="base", image="python:3.12"))


def submit(name, cmd):
    job = ml.jobs.create_or_update(command(name=name, command=cmd, environment="base@latest"))
    print("submitted", job.name, job.status)
    return job


def stream(name):
    """What jobs.stream prints, and the exception it raised (if any)."""
    out = io.StringIO()
    raised = None
    with contextlib.redirect_stdout(out):
        try:
            ml.jobs.stream(name)
        except JobException as e:
            raised = e
    text = out.getvalue()
    print(f"--- jobs.stream({name}) printed ---")
    print(text, end="")
    print(f"--- end ({'raised ' + type(raised).__name__ if raised else 'returned'}) ---")
    return text, raised


def expect_in_order(text, lines):
    at = 0
    for line in lines:
        i = text.find(line, at)
        assert i >= 0, f"missing (in order) {line!r} in:\n{text}"
        at = i + len(line)


# A job that runs to completion: every log line once, in order, then the summary.
submit("stream-ok", "python train.py --epochs 3")
text, raised = stream("stream-ok")
assert raised is None, raised
expect_in_order(text, [
    "RunId: stream-ok",
    "Streaming user_logs/std_log.txt",
    "[amlspec-emulator] job stream-ok: Running",
    "[amlspec-emulator] $ python train.py --epochs 3",
    "epoch 1/3 loss=0.900",
    "epoch 2/3 loss=0.600",
    "epoch 3/3 loss=0.300",
    "[amlspec-emulator] job stream-ok: Completed",
    "Execution Summary",
    "RunId: stream-ok",
])
assert text.count("epoch 2/3 loss=0.600") == 1, text

# A job the emulator fails while it runs: its error reaches the caller.
submit("stream-fail", "python train.py --fail")
job_id = f"{WS}/jobs/stream-fail"


def fail_when_running():
    url = f"{BASE}/history/v1.0{WS}/runs/stream-fail/details"
    for _ in range(300):
        if requests.get(url, headers=H).json().get("status") == "Running":
            r = requests.post(f"{BASE}/admin/jobs/fail", json={"id": job_id},
                              headers={"x-amlspec-admin-key": ADMIN_KEY})
            assert r.status_code == 200, r.text
            return
        time.sleep(0.1)


t = threading.Thread(target=fail_when_running)
t.start()
text, raised = stream("stream-fail")
t.join()
assert raised is not None, "jobs.stream did not raise for a failed job"
message = "the emulator failed job 'stream-fail' on request"
assert message in str(raised), str(raised)
print("raised:", " ".join(str(raised).split()))
expect_in_order(text, [
    "RunId: stream-fail",
    "[amlspec-emulator] $ python train.py --fail",
    "[amlspec-emulator] job stream-fail: Failed: Execution failed.",
])
print("STREAM OK")
