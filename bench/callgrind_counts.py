#!/usr/bin/env python3
"""Totals of a callgrind output file: instructions (Ir), global bus events (Ge: atomic
read-modify-write instructions, with --collect-bus=yes) and calls of the pthread mutex and
futex functions, summed over every caller. Prints one line: Ir Ge mutex_locks futex_waits.

    callgrind_counts.py callgrind.out.PID
"""
import re
import sys

LOCKS = re.compile(r"pthread_mutex_lock|pthread_mutex_trylock|pthread_rwlock_(rd|wr)lock")
WAITS = re.compile(r"__lll_lock_wait|futex_wait|__futex_abstimed_wait")


def main(path):
    names = {}
    events = []
    totals = None
    locks = waits = 0
    pending = None  # the callee of the next calls= line
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:") or line.startswith("summary:"):
                totals = [int(x) for x in line.split()[1:]]
            elif line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.strip())
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    pending = names.get(m.group(1), "")
            elif line.startswith("fn="):
                m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.strip())
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and pending is not None:
                n = int(line.split("=")[1].split()[0])
                if LOCKS.search(pending):
                    locks += n
                elif WAITS.search(pending):
                    waits += n
                pending = None
    if totals is None:
        sys.exit(f"{path}: no totals line")
    value = dict(zip(events, totals))
    print(value.get("Ir", 0), value.get("Ge", 0), locks, waits)


if __name__ == "__main__":
    main(sys.argv[1])
