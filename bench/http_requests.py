#!/usr/bin/env python3
"""Sends a fixed number of requests over one keep-alive connection, one after the other,
each as wrk sends it (GET with a Host header only), and checks every answer's status and
body. Used by http_cost.sh to make a node serve an exact number of requests while it is
counted.

    http_requests.py PORT PATH COUNT EXPECTED_BODY
"""
import socket
import sys


def main(port, path, count, expected):
    want = expected.encode()
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        buf = b""
        for i in range(count):
            s.sendall(request)
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit(f"http_requests.py: connection closed at request {i + 1}")
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            if not lines[0].startswith(b"HTTP/1.1 200"):
                sys.exit(f"http_requests.py: request {i + 1} answered {lines[0]!r}")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit(f"http_requests.py: connection closed in the body of request {i + 1}")
                buf += chunk
            body, buf = buf[:length], buf[length:]
            if body != want:
                sys.exit(f"http_requests.py: request {i + 1} answered {body!r}, expected {want!r}")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4])
