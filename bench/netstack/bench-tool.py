#!/usr/bin/env python3
"""Netstack benchmark endpoints; each client prints one JSON line.

  sink PORT            server: per connection, count bytes to EOF, reply with the count; 1-byte echo for latency
  push PORT BYTES      one connection: send BYTES, shutdown(SHUT_WR), wait for the count → MB/s
  setup PORT N         N sequential connections: connect, send 1 byte, receive it → per-connection ms
"""
import json, socket, sys, threading, time

def sink(port):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(1024)
    print(json.dumps({"listening": port}), flush=True)
    def handle(c):
        total = 0
        buf = bytearray(1 << 20)
        try:
            while True:
                n = c.recv_into(buf)
                if n == 0: break
                if total == 0 and n == 1 and buf[0] == 0x2a:  # latency probe: echo it at once
                    c.sendall(b"*"); total = -1; continue
                total += n
            c.sendall(str(max(total, 0)).encode())
        except OSError:
            pass
        finally:
            c.close()
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

def push(port, nbytes):
    c = socket.create_connection(("127.0.0.1", port))
    block = memoryview(b"\x55" * (1 << 20))
    start = time.perf_counter(); left = nbytes
    while left > 0:
        n = min(left, len(block)); c.sendall(block[:n]); left -= n
    c.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = c.recv(64)
        if not d: break
        reply += d
    secs = time.perf_counter() - start
    assert int(reply) == nbytes, reply
    print(json.dumps({"bytes": nbytes, "secs": secs, "MBps": nbytes / secs / 1e6}))

def setup(port, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(b"*")
        assert c.recv(1) == b"*"
        times.append((time.perf_counter() - t) * 1000)
        c.close()
    print(json.dumps({"ms": times}))

cmd, port = sys.argv[1], int(sys.argv[2])
if cmd == "sink": sink(port)
elif cmd == "push": push(port, int(sys.argv[3]))
elif cmd == "setup": setup(port, int(sys.argv[3]))
