"""azure-ai-ml's `ml_client.jobs.stream(JOB)` against the emulator, for a job that amlspec
submitted: prints what `jobs.stream` prints, then "STREAM DONE".

Run by `cargo test --test integration azure_ai_ml -- --ignored` (tests/cli/logs.rs):

    python stream_job.py PORT CA.pem SUBSCRIPTION RESOURCE_GROUP WORKSPACE JOB

Credentials come from AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET (the
emulator's service principal), never from the command line.
"""
import os
import socket
import sys

PORT, CA, SUB, RG, WS, JOB = sys.argv[1:7]
BASE = f"https://127.0.0.1:{PORT}"
os.environ["REQUESTS_CA_BUNDLE"] = CA
os.environ["AZUREML_RUN_POLLING_INTERVAL_MIN"] = "1"

# *.localhost -> 127.0.0.1; any other name is refused, so nothing leaves the machine.
_orig = socket.getaddrinfo


def guarded(host, *a, **k):
    if host.endswith(".localhost") or host in ("localhost", "127.0.0.1"):
        return _orig("127.0.0.1", *a, **k)
    raise OSError(f"refusing to resolve {host}")


socket.getaddrinfo = guarded

from azure.ai.ml import MLClient  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402

cred = ClientSecretCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"],
                              os.environ["AZURE_CLIENT_SECRET"], authority=BASE,
                              disable_instance_discovery=True)
ml = MLClient(credential=cred, subscription_id=SUB, resource_group_name=RG, workspace_name=WS,
              cloud="AmlspecEmulator",
              cloud_metadata={"azure_portal": f"{BASE}/", "resource_manager": f"{BASE}/",
                              "active_directory": f"{BASE}/", "aml_resource_id": f"{BASE}/",
                              "storage_endpoint": f"core.localhost:{PORT}",
                              "registry_discovery_endpoint": f"{BASE}/"},
              enable_telemetry=False, show_progress=False)
ml.jobs.stream(JOB)
print("STREAM DONE")
