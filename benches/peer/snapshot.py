"""A code snapshot hashed, and hashed and uploaded, by Azure's own Python SDK: the peer
that `cargo bench --bench snapshot` (benches/snapshot.rs) times against amlspec.

Setup: as for benches/peer/seed_scenario.py (the bench finds the interpreter).

Modes:
  hash TREE                 the SDK's content hash of the folder TREE, the function a
                            Code asset is addressed by (azure.ai.ml._utils._asset_utils
                            .get_content_hash, with the folder's .amlignore/.gitignore);
                            prints `peer-hash HASH`
  upload TREE PORT CA       MLClient for workspace pets-ws of resource group ml-rg of the
                            emulator on PORT (CA: its certificate), then the command job of
                            specs/pets.yaml with TREE as its code, as seed_scenario.py submits
                            it: `ml_client.jobs.create_or_update(command(code=TREE, ...))`.
                            For its code the SDK hashes the folder, looks the code up by that
                            hash, starts the pending upload, uploads every file through the
                            SAS, sets the confirmation metadata and PUTs the code version;
                            then it PUTs the job. (`ml_client.code`, which would make the code
                            asset alone, is private in 1.35: `MLClient._code`.) The
                            environment's latest version is read first (one GET). Prints
                            `peer-code ID`, the code version the job runs

On exit it prints one JSON line to stderr, prefixed `peer-report `: `marks` (seconds from
the script's first line to the end of each step), `hashing` (seconds spent in the SDK's
folder hashes, and how many it made: a Code asset hashes its folder more than once),
`upload` (seconds in BlobStorageClient.upload), `warnings` (what the SDK logged at
WARNING or above), `http` (its HTTP requests by surface and method) and `refused` (host
names that are not loopback, which are refused: benches/peer/loopback.py).
"""
import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("mode", choices=["hash", "upload"])
parser.add_argument("tree")
parser.add_argument("port", type=int, nargs="?")
parser.add_argument("ca", nargs="?")
ARGS = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loopback  # noqa: E402

if ARGS.mode == "upload":
    if ARGS.port is None or ARGS.ca is None:
        sys.exit("upload needs TREE PORT CA")
    loopback.guard(ARGS.ca)
else:
    loopback.guard(os.devnull)

MARKS = []
WARNINGS = []
SPENT = {"hashing": 0.0, "hashes": 0, "upload": 0.0}


def mark(step):
    MARKS.append([step, round(time.perf_counter() - T0, 4)])


class Recorded(logging.Handler):
    def emit(self, record):
        WARNINGS.append(f"{record.name}: {record.getMessage()}")


logging.captureWarnings(True)
logging.getLogger().addHandler(Recorded(level=logging.WARNING))

from azure.ai.ml._artifacts import _artifact_utilities, _blob_storage_helper  # noqa: E402
from azure.ai.ml._utils import _asset_utils  # noqa: E402
from azure.ai.ml import command  # noqa: E402
from azure.ai.ml.entities._assets._artifacts import code as _code_entity  # noqa: E402
import azure.identity  # noqa: E402, F401  (counted in "imported")

mark("imported")
loopback.count_http()


def timed(owner, name, key, count=None):
    """Add the time spent in owner.name to SPENT[key]."""
    original = getattr(owner, name)

    def wrapper(*a, **k):
        start = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            SPENT[key] += time.perf_counter() - start
            if count:
                SPENT[count] += 1

    setattr(owner, name, wrapper)


# The folder hashes a Code asset makes: its content hash (get_content_hash: when the
# entity is made, and again to look the code up by it) and the object hash that names the
# upload's folder (get_object_hash). Wrapped where they are called from.
timed(_code_entity, "get_content_hash", "hashing", "hashes")
timed(_artifact_utilities, "get_content_hash", "hashing", "hashes")
timed(_artifact_utilities, "get_object_hash", "hashing", "hashes")
timed(_blob_storage_helper.BlobStorageClient, "upload", "upload")


def report():
    mark("done")
    print(
        "peer-report "
        + json.dumps(
            {
                "marks": MARKS,
                "hashing": round(SPENT["hashing"], 4),
                "hashes": SPENT["hashes"],
                "upload": round(SPENT["upload"], 4),
                "cpu": round(time.process_time(), 4),
                "warnings": WARNINGS,
                "http": loopback.HTTP,
                "refused": loopback.REFUSED,
            }
        ),
        file=sys.stderr,
    )


tree = os.path.abspath(ARGS.tree)

if ARGS.mode == "hash":
    content_hash = _asset_utils.get_content_hash(tree, _asset_utils.get_ignore_file(tree))
    mark("hash")
    print(f"peer-hash {content_hash}", file=sys.stderr)
    report()
    sys.exit(0)

ml_client = loopback.ml_client(ARGS.port, "ml-rg", "pets-ws")
mark("client")
environment = ml_client.environments.get("fastai2", label="latest")
mark("environment")
job = ml_client.jobs.create_or_update(
    command(
        code=tree,
        command="python train.py --epochs 5",
        environment=f"{environment.name}:{environment.version}",
        compute="gpu-cluster",
        instance_count=1,
        experiment_name="fastai-custom-image",
    )
)
mark("job")
print(f"peer-code {job.code}", file=sys.stderr)
report()
