#!/usr/bin/python3
"""The app container of job_e2e_test's Job: does its work through the pod's sidecar and exits.

    job_app.py HOST PORT WANT DENIED_PORT

Fetches one line from HOST:PORT (allowed by the pod's egress policy) and checks it is WANT, then
connects to HOST:DENIED_PORT (denied): the sidecar accepts the redirected connection and resets
it. Prints one line per step; exits 0 only when the fetch returned WANT and the denied connection
was reset (1: wrong answer, 2: the denied port answered or closed without a reset, 3: an error)."""

import socket
import sys


def main():
    host, port, want, denied = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            got = s.makefile("r").readline().rstrip("\n")
    except OSError as e:
        print("fetch %s:%d: %s" % (host, port, e), flush=True)
        return 3
    print("fetched %r from %s:%d" % (got, host, port), flush=True)
    if got != want:
        return 1
    try:
        with socket.create_connection((host, denied), timeout=10) as s:
            data = s.recv(100)
    except ConnectionResetError:
        print("%s:%d: reset" % (host, denied), flush=True)
        return 0
    except OSError as e:
        print("%s:%d: %s, not a reset" % (host, denied, e), flush=True)
        return 2
    print("%s:%d: answered %r, not a reset" % (host, denied, data), flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
