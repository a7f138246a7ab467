"""The seed scenario (specs/pets.yaml) written imperatively with Azure's own Python SDK, as
its documentation teaches: the peer that `cargo bench --bench peer` times against amlspec.

Setup (one line, from the repository root; the bench also finds the CI venv
target/ci-python, or the interpreter AMLSPEC_PYTHON names):

    python3 -m venv target/peer-python && target/peer-python/bin/pip install -r benches/peer/requirements.txt

Run by the bench (benches/peer.rs) against its in-process emulator; by hand against
`amlspec emulator --port 8443 --tls-self-signed /tmp/peer/ca.pem`, once a workspace
pets-ws exists in resource group ml-rg (e.g. made by `amlspec apply` of specs/pets.yaml):

    ACR_PASSWORD=bench-password target/peer-python/bin/python benches/peer/seed_scenario.py apply 8443 /tmp/peer/ca.pem

Modes:
  read    the reads the flow makes before creating anything: the workspace, the
          registry connection, the compute, the environment (latest version) and the
          job (`--job NAME`, the one already submitted)
  apply   the whole flow: MLClient; get the workspace; get-or-create the
          ContainerRegistry connection and the AmlCompute cluster (waiting for its
          long-running operation); create the environment; create the command job (its
          code folder uploaded, or found by content hash). Run again on the same
          state, it re-submits the job, as the documentation's flow does.
  imports only start the interpreter and import azure-ai-ml and azure-identity (what
          every mode pays before its first request)

The SDK signs in as the emulator's service principal (ClientSecretCredential), the
sign-in amlspec uses in the bench. On exit it prints one JSON line to stderr, prefixed
`peer-report `: seconds from the script's first line to the end of each step, in order
(`marks`: [[step, seconds], ...]), and the HTTP requests
it sent (counted in the `requests` transport that azure-core and MSAL use), by surface
and method. Any host name that is not loopback is refused (the guard of
tests/emulator/python/azure_ai_ml_probe.py), so nothing leaves the machine.
"""
import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("mode", choices=["read", "apply", "imports"])
parser.add_argument("port", type=int)
parser.add_argument("ca")
parser.add_argument("--job", help="read mode: the name of the job to get")
parser.add_argument(
    "--code",
    default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "specs", "fastai-example"),
    help="the job's code folder (default: specs/fastai-example)",
)
ARGS = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loopback  # noqa: E402

loopback.guard(ARGS.ca)

MARKS = []


def mark(step):
    MARKS.append([step, round(time.perf_counter() - T0, 4)])


from azure.ai.ml import command  # noqa: E402
from azure.ai.ml.entities import (  # noqa: E402
    AmlCompute,
    Environment,
    UsernamePasswordConfiguration,
    WorkspaceConnection,
)
from azure.core.exceptions import ResourceNotFoundError  # noqa: E402
import azure.identity  # noqa: E402, F401  (imported here so that "imported" counts it, as before)

mark("imported")

loopback.count_http()

# The names of specs/pets.yaml.
RESOURCE_GROUP = "ml-rg"
WORKSPACE = "pets-ws"
REGISTRY = "myregistry"
REGISTRY_HOST = "myregistry.azurecr.io"
CLUSTER = "gpu-cluster"
ENVIRONMENT = "fastai2"


def report():
    mark("done")
    print("peer-report " + json.dumps({"marks": MARKS, "http": loopback.HTTP, "refused": loopback.REFUSED}), file=sys.stderr)


if ARGS.mode == "imports":
    report()
    sys.exit(0)

ml_client = loopback.ml_client(ARGS.port, RESOURCE_GROUP, WORKSPACE)
mark("client")

workspace = ml_client.workspaces.get(WORKSPACE)
mark("workspace")

if ARGS.mode == "read":
    ml_client.connections.get(REGISTRY)
    mark("connection")
    ml_client.compute.get(CLUSTER)
    mark("compute")
    ml_client.environments.get(ENVIRONMENT, label="latest")
    mark("environment")
    if not ARGS.job:
        sys.exit("read mode needs --job NAME")
    ml_client.jobs.get(ARGS.job)
    mark("job")
    report()
    sys.exit(0)

# apply: get-or-create the registry connection.
try:
    ml_client.connections.get(REGISTRY)
except ResourceNotFoundError:
    ml_client.connections.create_or_update(
        WorkspaceConnection(
            name=REGISTRY,
            type="container_registry",
            target=REGISTRY_HOST,
            credentials=UsernamePasswordConfiguration(username="username", password=os.environ["ACR_PASSWORD"]),
        )
    )
mark("connection")

# get-or-create the GPU cluster, waiting for it to be provisioned.
try:
    ml_client.compute.get(CLUSTER)
except ResourceNotFoundError:
    ml_client.compute.begin_create_or_update(
        AmlCompute(
            name=CLUSTER,
            size="Standard_NC4as_T4_v3",
            min_instances=0,
            max_instances=4,
            idle_time_before_scale_down=1800,
        )
    ).result()
mark("compute")

# The environment: the team's image used as is (no conda file: user-managed dependencies).
environment = ml_client.environments.create_or_update(
    Environment(
        name=ENVIRONMENT,
        image=f"{REGISTRY_HOST}/fastdotai/fastai2:latest",
        description="fastai v2 from the team's registry",
    )
)
mark("environment")

job = ml_client.jobs.create_or_update(
    command(
        code=ARGS.code,
        command="python train.py --epochs 5",
        environment=f"{environment.name}:{environment.version}",
        compute=CLUSTER,
        instance_count=1,
        experiment_name="fastai-custom-image",
    )
)
mark("job")
print(f"peer-job {job.name} {job.status}", file=sys.stderr)
report()
