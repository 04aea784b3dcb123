#!/usr/bin/env python3
"""Small TCP servers and clients for the netstack tests. Prints one JSON line per result.

  server PORT echo|collect|rst|probe [MAX_CONNS]
  transfer PORT BYTES        send BYTES, shutdown(SHUT_WR), read the echo; sha256 both ways
  halfclose PORT             send, shutdown(SHUT_WR), then read the server's reply (collect server)
  many PORT N                N concurrent short connections against an echo server
  recv PORT                  connect and block in recv: how it ends (owner killed)
  rstclient PORT             connect, send, then close with SO_LINGER 0 (RST)
  bind PORT                  try to listen on PORT: "ok" or the errno name
"""
import asyncio, errno, hashlib, json, socket, struct, sys, threading, time

def out(**kw):
    print(json.dumps(kw), flush=True)

def block(i):
    return hashlib.sha256(str(i).encode()).digest() * 2048  # 64 KiB, deterministic

def serve(port, mode, max_conns):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(1024)
    out(listening=port)
    n = 0
    def handle(c):
        try:
            if mode == "echo":
                while True:
                    d = c.recv(1 << 20)
                    if not d: break
                    c.sendall(d)
                c.shutdown(socket.SHUT_WR)
                c.recv(1)
            elif mode == "collect":
                h = hashlib.sha256(); total = 0
                while True:
                    d = c.recv(1 << 16)
                    if not d: break
                    h.update(d); total += len(d)
                c.sendall(json.dumps({"got": total, "sha": h.hexdigest()}).encode())
                c.shutdown(socket.SHUT_WR)
            elif mode == "rst":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif mode == "probe":
                try:
                    while c.recv(65536): pass
                    out(server_saw="eof")
                except ConnectionResetError:
                    out(server_saw="reset")
        except OSError as e:
            out(server_error=errno.errorcode.get(e.errno, str(e)))
        finally:
            c.close()
    threads = []
    while max_conns == 0 or n < max_conns:
        c, _ = s.accept(); n += 1
        t = threading.Thread(target=handle, args=(c,)); t.start(); threads.append(t)
    for t in threads: t.join()
    s.close()
    out(exited=port)

def connect(port):
    return socket.create_connection(("localhost", port), timeout=60)

def transfer(port, nbytes):
    c = connect(port); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = hashlib.sha256(); got = hashlib.sha256(); total = [0]
    start = time.time()
    def send():
        left = nbytes; i = 0
        while left > 0:
            b = block(i)[:left]; c.sendall(b); sent.update(b); left -= len(b); i += 1
        c.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send); t.start()
    while True:
        d = c.recv(1 << 20)
        if not d: break
        got.update(d); total[0] += len(d)
    t.join(); c.close()
    out(sent=nbytes, received=total[0], same=sent.hexdigest() == got.hexdigest(), ms=round((time.time() - start) * 1000))

def halfclose(port):
    c = connect(port)
    c.sendall(b"hello, half-closed world")
    c.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = c.recv(65536)
        if not d: break
        reply += d
    out(reply=json.loads(reply), expect=hashlib.sha256(b"hello, half-closed world").hexdigest())

async def many(port, n):
    async def one(i):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        msg = f"ping {i}\n".encode()
        w.write(msg); await w.drain(); w.write_eof()
        data = await r.read()
        w.close()
        return data == msg
    start = time.time()
    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    ok = sum(1 for r in results if r is True)
    errs = sorted({type(r).__name__ for r in results if r is not True})
    out(ok=ok, n=n, errors=errs, ms=round((time.time() - start) * 1000))

def recv(port):
    c = connect(port)
    c.sendall(b"x")
    out(connected=True)
    start = time.time()
    try:
        while True:
            d = c.recv(65536)
            if not d:
                out(ended="eof", ms=round((time.time() - start) * 1000)); return
    except OSError as e:
        out(ended=type(e).__name__, ms=round((time.time() - start) * 1000))

def rstclient(port):
    c = connect(port)
    c.sendall(b"some bytes")
    time.sleep(0.3)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    out(rst=True)

def rstread(port):
    c = connect(port)
    try:
        d = c.recv(1)
        out(client_saw="eof" if not d else "data")
    except ConnectionResetError:
        out(client_saw="reset")

def bind(port):
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", port)); s.listen(1); out(bind="ok")
    except OSError as e:
        out(bind=errno.errorcode.get(e.errno, str(e)))

def connect_once(port):
    try:
        c = connect(port)
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        d = c.recv(1)
        out(connect="ok" if d else "eof")
    except OSError as e:
        out(connect=type(e).__name__)

cmd, port = sys.argv[1], int(sys.argv[2])
if cmd == "server": serve(port, sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
elif cmd == "transfer": transfer(port, int(sys.argv[3]))
elif cmd == "halfclose": halfclose(port)
elif cmd == "many": asyncio.run(many(port, int(sys.argv[3])))
elif cmd == "recv": recv(port)
elif cmd == "rstclient": rstclient(port)
elif cmd == "rstread": rstread(port)
elif cmd == "bind": bind(port)
elif cmd == "connect": connect_once(port)
