"""Issue 11's goals through the fault proxy, on CloudSigma, OpenNebula and
fleet (fault_suites.py has the scenarios and how things are counted):

  * reads at 20% faults, all kinds mixed: >= 99.9% succeed;
  * creates retried by the client with their request_id, at 20% mixed
    faults, at 50% truncated answers to the create method and at 50% resets
    after the request body: 0 duplicated at the emulator, 0 without an
    Operation, 0 Operations whose final state disagrees with the emulator.

CLOUDPLANE_FAULT_SCALE scales the 1,000 reads and 200 creates (default 1).
Each test starts its own emulator, proxy and server and stops them.
"""
import pytest

from fault_suites import (FULL_CREATES, FULL_READS, MODES, PROFILES, READ_GOAL, environment,
                          run_creates, run_reads, scaled)

PROVIDERS = ("cloudsigma", "opennebula", "fleet")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reads_ride_out_mixed_faults(provider, tmp_path):
    with environment(PROFILES[provider](), tmp_path) as env:
        figures = run_reads(env, scaled(FULL_READS))
    print(figures.line())
    assert figures.ok >= READ_GOAL * figures.reads, figures.line()
    assert env.exit_code == 0, f"cloudplaned exited with {env.exit_code}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_creates_happen_once(provider, mode, tmp_path):
    with environment(PROFILES[provider](), tmp_path) as env:
        figures = run_creates(env, scaled(FULL_CREATES), mode)
    report = figures.line() + "".join("\n  " + e for e in figures.examples)
    print(report)
    assert (figures.duplicates, figures.no_operation, figures.disagreeing) == (0, 0, 0), report
    assert env.exit_code == 0, f"cloudplaned exited with {env.exit_code}"
