"""Helpers shared by the client suites."""
import shutil

import pytest

from cloudplane_testing import BAZEL_BIN

CLOUDPLANECTL = BAZEL_BIN / "clients" / "cloudplanectl" / "cloudplanectl"


def require_tool(path_or_name, what):
    """The absolute path of a toolchain binary. A missing one fails the test:
    CI must not pass without a language, so nothing here is ever skipped."""
    found = shutil.which(str(path_or_name))
    if found is None:
        pytest.fail(f"{what}: {path_or_name} is missing; run tools/setup (tools/setup_clients)",
                    pytrace=False)
    return found
