"""pytest configuration for every suite under tests/."""
import os
import pathlib
import subprocess
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))


def pytest_configure(config):
    # CI runs with shared/ beside the checkout; a missing fixture folder there
    # is a failure of the run, not a reason to skip.
    shared = TESTS.parent.parent / "shared"
    if os.environ.get("CI") == "true" and not shared.is_dir():
        raise pytest.UsageError(f"CI=true but {shared} is missing")
    # The suites drive the real server binary through the generated stubs;
    # build both (a no-op when tools/test already did).
    subprocess.run(["bazel", "build", "--noshow_progress", "//service:cloudplaned",
                    "//proto:cloudplane_py"], cwd=TESTS.parent, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
