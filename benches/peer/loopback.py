"""What the benchmarks' Python peers share (benches/peer/seed_scenario.py and
benches/peer/snapshot.py): the loopback guard, the count of the SDK's HTTP requests, and
an MLClient connected to the bench's emulator over HTTPS.

Import it before azure-ai-ml, and call `guard()` at once: any host name that is not
loopback is refused (the guard of tests/emulator/python/azure_ai_ml_probe.py), so nothing
leaves the machine. `*.localhost` (the emulator's storage accounts) resolves to 127.0.0.1.
"""
import os
import socket

_orig = socket.getaddrinfo
# Hosts refused so far: the scripts report them, the bench warns when any is.
REFUSED = []
# HTTP requests sent, by "surface method" (`count_http()`).
HTTP = {}


def _guarded(host, *a, **k):
    if host.endswith(".localhost") or host in ("localhost", "127.0.0.1"):
        return _orig("127.0.0.1", *a, **k)
    REFUSED.append(host)
    raise OSError(f"peer refuses to resolve {host}")


def guard(ca):
    """Refuse every host that is not loopback; trust the emulator's CA (`ca`)."""
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    socket.getaddrinfo = _guarded


def count_http():
    """Count every HTTP request azure-core and MSAL send (they all go through
    HTTPAdapter.send): ARM, token, blob (by account name or path-style) or other."""
    import requests.adapters

    send = requests.adapters.HTTPAdapter.send

    def counted(self, request, *a, **k):
        path = request.path_url.split("?")[0]
        host = request.url.split("/")[2]
        if path.startswith("/subscriptions/"):
            surface = "arm"
        elif "/oauth2/" in path or "openid-configuration" in path or "/discovery/instance" in path:
            surface = "token"
        elif ".blob." in host or not path.startswith(("/history/", "/discovery", "/metadata")):
            surface = "blob"
        else:
            surface = "other"
        key = f"{surface} {request.method}"
        HTTP[key] = HTTP.get(key, 0) + 1
        return send(self, request, *a, **k)

    requests.adapters.HTTPAdapter.send = counted


def ml_client(port, resource_group, workspace):
    """An MLClient for `workspace` of the emulator on `port`, signed in as its service
    principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
    AZURE_SUBSCRIPTION_ID), every endpoint on the emulator."""
    from azure.ai.ml import MLClient
    from azure.identity import ClientSecretCredential

    base = f"https://127.0.0.1:{port}"
    credential = ClientSecretCredential(
        os.environ.get("AZURE_TENANT_ID", "11111111-1111-1111-1111-111111111111"),
        os.environ.get("AZURE_CLIENT_ID", "22222222-2222-2222-2222-222222222222"),
        os.environ.get("AZURE_CLIENT_SECRET", "emulator-client-secret"),
        authority=base,
        disable_instance_discovery=True,
    )
    return MLClient(
        credential=credential,
        subscription_id=os.environ.get("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001"),
        resource_group_name=resource_group,
        workspace_name=workspace,
        cloud="AmlspecEmulator",
        cloud_metadata={
            "azure_portal": f"{base}/",
            "resource_manager": f"{base}/",
            "active_directory": f"{base}/",
            "aml_resource_id": f"{base}/",
            "storage_endpoint": f"core.localhost:{port}",
            "registry_discovery_endpoint": f"{base}/",
        },
        enable_telemetry=False,
        show_progress=False,
    )
