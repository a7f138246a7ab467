"""A quick check that the data store is reachable before a long distributed run."""

import platform

print(f"python {platform.python_version()} on {platform.node()}")
