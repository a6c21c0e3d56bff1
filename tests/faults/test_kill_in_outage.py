"""SIGKILL of cloudplaned with creates in flight, restarted on the same
state directory while the provider answers 503 to everything for 10 s
(issue 11): 0 lost (every request_id retried by the client returns its
Operation), 0 duplicated at the emulator, 0 failed operations whose resource
exists, and every operation finishes.

CLOUDPLANE_FAULT_SCALE scales the 200 creates (default 1)."""
from fault_suites import FULL_CREATES, run_kill_in_outage, scaled


def test_sigkill_with_creates_in_flight_during_provider_outage(tmp_path):
    figures = run_kill_in_outage(tmp_path, scaled(FULL_CREATES))
    c = figures.creates
    report = figures.line() + "".join("\n  " + e for e in c.examples)
    print(report)
    assert figures.running_at_kill > 0, "no operation was running at the kill"
    assert figures.outage_answers > 0, "the restarted server never met the outage"
    assert (figures.lost, c.duplicates, c.failed_but_exists) == (0, 0, 0), report
    assert c.unfinished == 0, report
    assert figures.exit_code == 0, f"cloudplaned exited with {figures.exit_code}"
