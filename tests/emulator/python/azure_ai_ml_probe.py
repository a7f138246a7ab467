"""Azure's own Python SDK (azure-ai-ml 1.35.2, azure-identity 1.27.0) against the emulator.
Run by `cargo test --test integration azure_ai_ml -- --ignored`
(`azure_ai_ml_probe_drives_every_flow`, tests/emulator/runs.rs), which CI runs in a pinned
venv; or by hand:

    python -m venv /tmp/venv && /tmp/venv/bin/pip install -r tests/python-requirements.txt
    cargo run --release -- emulator --port 8443 --tls-self-signed /tmp/sdkprobe/ca.pem --lro-seconds 1 &
    /tmp/venv/bin/python tests/emulator/python/azure_ai_ml_probe.py 8443 /tmp/sdkprobe/ca.pem /tmp/sdkprobe

It makes its own files under WORKDIR and ends with "ALL OK" after: an Entra token through
azure-identity (MSAL), workspace get, AmlCompute create (LRO), environment from an image,
environment from a build context twice (datastore upload with SharedKey on
{account}.blob.core.localhost, then skipped as already uploaded), a changed Dockerfile (409 on
version 1, the SDK retries with nextVersion 2), a ContainerRegistry connection, and a command
job submitted twice (code uploaded once through the startPendingUpload SAS, then found by
content hash) that runs to Completed.
"""
import os, socket, sys, time, json
PORT = int(sys.argv[1])
CA = sys.argv[2] if len(sys.argv) > 2 else "/tmp/sdkprobe/ca.pem"
WORK = sys.argv[3] if len(sys.argv) > 3 else "/tmp/sdkprobe"
BASE = f"https://127.0.0.1:{PORT}"
os.environ["REQUESTS_CA_BUNDLE"] = CA
for path, text in [("src/train.py", "print('hello from probe')\n"), ("src/utils/helpers.py", "X = 1\n"),
                   ("ctx/Dockerfile", "FROM fastdotai/fastai2:latest\n")]:
    os.makedirs(os.path.dirname(os.path.join(WORK, path)), exist_ok=True)
    with open(os.path.join(WORK, path), "w") as f:
        f.write(text)
# *.localhost -> 127.0.0.1; everything else that is not loopback is refused (safety net).
_orig = socket.getaddrinfo
def guarded(host, *a, **k):
    if host.endswith(".localhost") or host in ("localhost", "127.0.0.1"):
        return _orig("127.0.0.1", *a, **k)
    raise OSError(f"probe refuses to resolve {host}")
socket.getaddrinfo = guarded

from azure.identity import ClientSecretCredential
from azure.ai.ml import MLClient, command
from azure.ai.ml.entities import AmlCompute, Environment, BuildContext, WorkspaceConnection, UsernamePasswordConfiguration
import requests

TENANT = "11111111-1111-1111-1111-111111111111"
SUB = "00000000-0000-0000-0000-000000000001"
cred = ClientSecretCredential(TENANT, "22222222-2222-2222-2222-222222222222", "emulator-client-secret",
                              authority=BASE, disable_instance_discovery=True)
tok = cred.get_token(f"{BASE}/.default").token
print("azure-identity token ok")
H = {"Authorization": f"Bearer {tok}"}
rg = f"{BASE}/subscriptions/{SUB}/resourceGroups/probe-rg"
def put(url, body):
    r = requests.put(url, json=body, headers=H); assert r.status_code < 300, (url, r.status_code, r.text); return r
put(f"{rg}?api-version=2021-04-01", {"location": "eastus"})
st = f"/subscriptions/{SUB}/resourceGroups/probe-rg/providers/Microsoft.Storage/storageAccounts/probestore"
kv = f"/subscriptions/{SUB}/resourceGroups/probe-rg/providers/Microsoft.KeyVault/vaults/probe-kv"
put(f"{BASE}{st}?api-version=2023-01-01", {"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})
put(f"{BASE}{kv}?api-version=2023-07-01", {"location": "eastus", "properties": {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"}}})
put(f"{rg}/providers/Microsoft.MachineLearningServices/workspaces/probe-ws?api-version=2026-07-01",
    {"location": "eastus", "properties": {"storageAccount": st, "keyVault": kv}})
time.sleep(1.5)  # the emulator runs with --lro-seconds 1 in auto mode

ml = MLClient(credential=cred, subscription_id=SUB, resource_group_name="probe-rg", workspace_name="probe-ws",
    cloud="AmlspecEmulator",
    cloud_metadata={"azure_portal": f"{BASE}/", "resource_manager": f"{BASE}/", "active_directory": f"{BASE}/",
                    "aml_resource_id": f"{BASE}/", "storage_endpoint": f"core.localhost:{PORT}",
                    "registry_discovery_endpoint": f"{BASE}/"},
    enable_telemetry=False, show_progress=False)
ws = ml.workspaces.get("probe-ws"); print("workspace", ws.name, ws.location)
c = ml.compute.begin_create_or_update(AmlCompute(name="gpu-cluster", size="STANDARD_NC6", min_instances=0, max_instances=4, idle_time_before_scale_down=120)).result()
print("compute", c.name, c.provisioning_state, c.size, c.max_instances)
e = ml.environments.create_or_update(Environment(name="fastai2", image="fastdotai/fastai2:latest")); print("env", e.name, e.version)
for i in range(2):
    b = ml.environments.create_or_update(Environment(name="fastai2-build", build=BuildContext(path=f"{WORK}/ctx"))); print("env build", b.name, b.version, b.build.path)
# A changed Dockerfile: version 1 exists with another body -> 409 -> the SDK retries with nextVersion.
with open(f"{WORK}/ctx/Dockerfile", "a") as f:
    f.write(f"RUN echo {time.time()}\n")
b = ml.environments.create_or_update(Environment(name="fastai2-build", build=BuildContext(path=f"{WORK}/ctx")))
print("env build changed", b.name, b.version)
assert b.version == "2", b.version
conn = ml.connections.create_or_update(WorkspaceConnection(name="probe-acr", type="container_registry", target="probeacr.azurecr.io",
    credentials=UsernamePasswordConfiguration(username="probeuser", password="probe-password"))); print("connection", conn.name)
os.chdir(WORK)
for i in range(2):
    j = ml.jobs.create_or_update(command(code=f"{WORK}/src", command="python train.py", environment="fastai2@latest", compute="gpu-cluster"))
    print("job", j.name, j.status, j.experiment_name)
got = ml.jobs.get(j.name); print("job get", got.status)
deadline = time.time() + 30  # auto mode: NotStarted -> ... -> Completed in about 6 s
while got.status not in ("Completed", "Failed", "Canceled") and time.time() < deadline:
    time.sleep(1)
    got = ml.jobs.get(j.name)
print("job final", got.status)
assert got.status == "Completed", got.status
print("ALL OK")
