#!/usr/bin/env python3
"""Splits the instructions of a callgrind dump of ternd serving N requests of /fn/NAME into
the layers of the request path, per request, from the inclusive costs of the entry points
of each layer:

  guest       code of the function's own compiled object (wasm2c output, wasi-libc inside it)
  wasi        WASI host calls (environ_get, fd_read, fd_write, ...) made by the guest
  reset       giving the linear memory back (MemoryPool::release: the exact page reset)
  engine      the rest of Engine::invoke: sandbox set-up, instantiation, data segments, teardown
  invoker     Invoker::invoke around the engine: admission, request building, metrics, record
  gateway     HttpGateway::handle around the invoker: routing, the CGI environment, the CGI
              response parsing and the response's headers
  http        the rest of the serving threads' work: the connection (the epoll loop of a
              plain connection or Asio's of a TLS one, the parser, serialising the
              response, sendmsg)
  other       the node's other threads meanwhile (timers, the async queue's polling): they
              depend on the time the requests took, not on their number

    callgrind_split.py CALLGRIND_OUT REQUESTS [TOP]

Prints "category instructions-per-request" lines, then the TOP (default 0) functions by
exclusive instructions per request.
"""
import re
import sys
from collections import defaultdict

NAME = re.compile(r"\((\d+)\)(?: (.*))?")


def parse(path):
    names = {}  # (kind, id) -> name, kind: "fn" (fn/cfn), "ob" (ob/cob)
    exclusive = defaultdict(int)
    inclusive_calls = defaultdict(int)  # fn -> cost of the calls it makes
    calls_to = defaultdict(int)  # fn -> cost of calls into it (its inclusive cost)
    edges = defaultdict(int)  # (caller, callee) -> cost of the calls
    fn_object = {}
    total = 0
    current_ob = None
    current_fn = None
    pending_callee = None
    after_calls = False

    def resolve(kind, text):
        m = NAME.match(text)
        if not m:
            return text
        if m.group(2) is not None:
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), "")

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                ir = int(parts[1]) if len(parts) > 1 else 0
                if after_calls:
                    inclusive_calls[current_fn] += ir
                    if pending_callee != current_fn:
                        calls_to[pending_callee] += ir
                    edges[(current_fn, pending_callee)] += ir
                    after_calls = False
                else:
                    exclusive[current_fn] += ir
                    total += ir
                continue
            if line.startswith("ob="):
                current_ob = resolve("ob", line[3:])
            elif line.startswith("cob="):
                resolve("ob", line[4:])
            elif line.startswith("fn="):
                current_fn = resolve("fn", line[3:])
                fn_object.setdefault(current_fn, current_ob)
            elif line.startswith("cfn="):
                pending_callee = resolve("fn", line[4:])
            elif line.startswith("calls="):
                after_calls = True
    return total, exclusive, calls_to, fn_object, edges


def main(path, requests, top):
    total, exclusive, calls_to, fn_object, edges = parse(path)

    def inclusive(pattern):
        """Summed cost of the calls into the functions whose name matches, counting only
        the outermost ones (a matched function's calls into another matched one are inside
        the first)."""
        rx = re.compile(pattern)
        return sum(cost for fn, cost in calls_to.items() if rx.search(fn))

    guest = sum(cost for fn, cost in exclusive.items()
                if re.search(r"/objects/[^/]+\.so$", fn_object.get(fn) or ""))
    wasi = inclusive(r"^Z_wasi_snapshot_preview1Z_")
    reset = inclusive(r"^tern::wasm::MemoryPool::release")
    engine = inclusive(r"^tern::wasm::Engine::invoke\(")
    invoker = inclusive(r"^tern::exec::Invoker::invoke\(")
    respond_lambda = inclusive(r"^std::_Function_handler<void \(tern::exec::InvokeOutput\), "
                               r"tern::triggers::HttpGateway::invoke")
    session_respond = inclusive(r"(Session|PlainConnection)::respond\(")
    handle = inclusive(r"^tern::triggers::HttpGateway::handle\(")
    # The serving threads were inside their event loops (plain connections' epoll loops,
    # Asio's for TLS) when the counters were zeroed, so their cost is the loops' own plus
    # what they called (recursive entries aside).
    loop = re.compile(r"^(boost::asio::detail::scheduler::run|tern::http::PlainLoops::Loop::run)\(")
    serving = sum(cost for fn, cost in exclusive.items() if loop.search(fn)) + sum(
        cost for (caller, callee), cost in edges.items()
        if loop.search(caller) and not loop.search(callee))
    rows = [
        ("guest", guest),
        ("wasi", wasi),
        ("reset", reset),
        ("engine", engine - guest - wasi - reset),
        ("invoker", invoker - engine - respond_lambda),
        ("gateway", handle - invoker + respond_lambda - session_respond),
        ("http", serving - handle + session_respond),
        ("other", total - serving),
        ("total", total),
    ]
    for name, cost in rows:
        print(f"{name} {cost / requests:.0f}")
    if top:
        print()
        for fn, cost in sorted(exclusive.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{cost / requests:9.1f}  {fn[:150]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
