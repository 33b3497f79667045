#!/usr/bin/python3
"""How long the test API server takes from a write to its event at every open watch: the share
of "kubectl apply -> enforced" that is the test server's own, so end-to-end measurements can
subtract it. Prints p50/p99 of the PATCH round trip and of PATCH sent -> the event read at all
WATCHES watches, over WRITES label patches on one keep-alive connection.

  bazel run //test/k8s/apiserver:watch_latency -- [WRITES] [WATCHES]
"""

import sys, time

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from apiserver_harness import FakeApiServer, RawWatch


def percentile(samples, p):
    return sorted(samples)[max(0, int(len(samples) * p) - 1)]


def main():
    writes = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    watch_count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    api = FakeApiServer("--bookmark-interval", "600")
    try:
        api.create_pod("default", "p")
        rv = api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        watches = [RawWatch(api, f"/api/v1/pods?watch=1&resourceVersion={rv}")
                   for _ in range(watch_count)]
        patch = {"Content-Type": "application/merge-patch+json"}
        round_trip, to_watches = [], []
        for i in range(writes):
            start = time.perf_counter()
            api.ok("PATCH", "/api/v1/namespaces/default/pods/p",
                   {"metadata": {"labels": {"i": str(i)}}}, patch)
            answered = time.perf_counter()
            for w in watches:
                event = w.next_event()
                assert event["object"]["metadata"]["labels"]["i"] == str(i), event
            seen = time.perf_counter()
            round_trip.append((answered - start) * 1e3)
            to_watches.append((seen - start) * 1e3)
        for w in watches:
            w.close()
    finally:
        api.stop()
    print(f"{writes} PATCHes, {watch_count} watches: round trip p50 "
          f"{percentile(round_trip, .5):.2f} ms p99 {percentile(round_trip, .99):.2f} ms; "
          f"sent -> event at every watch p50 {percentile(to_watches, .5):.2f} ms "
          f"p99 {percentile(to_watches, .99):.2f} ms")


if __name__ == "__main__":
    main()
