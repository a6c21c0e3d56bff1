"""Runs issue 11's fault scenarios at full scale in one invocation and prints
the figures the closing note quotes (no pass/fail here: tests/faults asserts
the goals, with the same code).

    .deps/venv/bin/python bench/faults.py [--providers cloudsigma,opennebula,fleet]
        [--scenarios reads,mixed,truncate,reset_after,kill] [--reads 1000]
        [--creates 200] [--seed 11] [--keep]

Each scenario gets a fresh emulator, fault proxy and cloudplaned
(bazel-bin/service/cloudplaned; build it first) in a temporary directory:

  reads        1,000 reads (Get of seeded resources, List pages) at 20%
               faults, all kinds mixed (stalls of 3 s, client deadline 30 s);
  mixed        200 creates retried by the client with their request_id, at
               20% mixed faults;
  truncate     the same with 50% of the create method's answers truncated
               (POST; fleet's create is a PUT);
  reset_after  the same with 50% of them reset after the request body;
  kill         200 CloudSigma creates in flight, SIGKILL, restart on the
               same state dir while the provider answers 503 for 10 s.

Counted at the emulator (its own API, not through the proxy or cloudplane):
duplicates (extra resources carrying a request's chosen id), requests that
never got an Operation, Operations whose final state disagrees with the
emulator. Goals: reads >= 99.9%, 0 / 0 / 0, and for kill 0 lost.
"""
import argparse
import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "faults"))

import fault_suites  # noqa: E402
from fault_suites import (PROFILES, environment, run_creates, run_kill_in_outage,  # noqa: E402
                          run_reads)

SCENARIOS = ("reads", "mixed", "truncate", "reset_after", "kill")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", default="cloudsigma,opennebula,fleet")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--reads", type=int, default=fault_suites.FULL_READS)
    parser.add_argument("--creates", type=int, default=fault_suites.FULL_CREATES)
    parser.add_argument("--seed", type=int, default=11, help="the proxy's random seed")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directories (server and emulator logs)")
    args = parser.parse_args()
    providers = [p for p in args.providers.split(",") if p]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for name in providers:
        if name not in PROFILES:
            parser.error(f"unknown provider {name}; known: {', '.join(PROFILES)}")
    for name in scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name}; known: {', '.join(SCENARIOS)}")

    rows = []
    started = time.monotonic()
    for provider in providers:
        for scenario in scenarios:
            if scenario == "kill" and provider != "cloudsigma":
                continue  # the SIGKILL scenario runs on CloudSigma
            workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"cloudplane-faults-{provider}-"))
            try:
                rows.append(run_one(provider, scenario, workdir, args))
            finally:
                if args.keep:
                    print(f"  (work directory kept: {workdir})", flush=True)
                else:
                    shutil.rmtree(workdir, ignore_errors=True)

    print()
    header = ("provider", "scenario", "n", "reads ok", "duplicates", "no operation",
              "disagreeing", "lost", "server exit", "seconds")
    widths = [10, 19, 5, 8, 10, 12, 11, 4, 11, 7]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(f"\n{len(rows)} scenarios in {time.monotonic() - started:.0f}s; goals: reads >= 99.9%, "
          f"duplicates / no operation / disagreeing / lost all 0, server exit 0")


def run_one(provider, scenario, workdir, args):
    if scenario == "kill":
        figures = run_kill_in_outage(workdir, args.creates)
        print(figures.line(), flush=True)
        _examples(figures.creates.examples)
        c = figures.creates
        disagree = c.failed_but_exists + c.ok_but_missing + c.unfinished
        return (provider, "kill+outage", figures.requests, "-", c.duplicates, c.no_operation,
                disagree, figures.lost, figures.exit_code, f"{figures.seconds:.0f}")
    with environment(PROFILES[provider](), workdir, seed=args.seed) as env:
        if scenario == "reads":
            figures = run_reads(env, args.reads, seed=args.seed)
        else:
            figures = run_creates(env, args.creates, scenario, seed=args.seed + 12)
    print(figures.line(), flush=True)
    if scenario == "reads":
        return (provider, "reads mixed", figures.reads, f"{100 * figures.ok_ratio:.1f}%", "-",
                "-", "-", "-", env.exit_code, f"{figures.seconds:.0f}")
    _examples(figures.examples)
    return (provider, f"creates {scenario}", figures.requests, "-", figures.duplicates,
            figures.no_operation, figures.disagreeing, "-", env.exit_code,
            f"{figures.seconds:.0f}")


def _examples(examples):
    for example in examples:
        print("    e.g. " + example, flush=True)


if __name__ == "__main__":
    main()
