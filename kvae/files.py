"""Files kvae writes and checks: JSON written atomically, and digests."""

import hashlib
import json
import os
from pathlib import Path


def write_json(path, value):
    """Write `value` as JSON to `path` atomically (a synced temporary file,
    then a rename): a crash leaves the old file or the new one."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def digest(path, algorithm="sha256"):
    """The hex digest of a file's bytes."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()
