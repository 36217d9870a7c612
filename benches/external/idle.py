"""Opens N connections to the gateway, makes one request on each, leaves them all open and idle,
and prints the gateway's RSS growth per connection (from /proc/PID/status) after a pause.

    python3 idle.py PROTOCOL PORT COUNT GATEWAY_PID [CA_FILE]

PROTOCOL: http1 (keep-alive HTTP/1.1), h2c (HTTP/2 prior knowledge), tls (HTTPS, ALPN
http/1.1), tls-h2 (HTTPS, ALPN h2), or silent (connect, send nothing). Bounded: COUNT
connections, every read with a 10 s timeout."""
import os
import resource
import socket
import ssl
import sys
import time

protocol, port, count, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ca = sys.argv[5] if len(sys.argv) > 5 else None
resource.setrlimit(resource.RLIMIT_NOFILE, (count + 256, count + 256))
PAUSE = 3.0  # past the gateway's one second before an idle HTTP/1.1 connection lets its buffers go

BODY = b'{"policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"}}'
HTTP1 = (b"POST /v1/policies/propose HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
         b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def rss_kib():
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def cpu_us():
    """The gateway's CPU time (user + system) so far, in microseconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf("SC_CLK_TCK")


def frame(kind, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_request():
    path = b"/v1/policies"
    # HPACK: :method GET (2), :scheme http (6), :path literal with indexed name 4, :authority (1).
    block = b"\x82\x86\x04" + bytes([len(path)]) + path + b"\x01\x09localhost"
    return PREFACE + frame(4, 0, 0, b"") + frame(1, 0x5, 1, block)


def read_http1(sock):
    seen = b""
    while b"\r\n\r\n" not in seen:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(f"closed: {seen!r}")
        seen += chunk
    head, _, rest = seen.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"unexpected answer: {head!r}")
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(rest) < length:
        rest += sock.recv(4096)


def read_h2(sock):
    """Reads frames until stream 1 ends (a HEADERS or DATA frame with END_STREAM)."""
    seen = b""
    while True:
        while len(seen) >= 9:
            size = int.from_bytes(seen[:3], "big")
            if len(seen) < 9 + size:
                break
            kind, flags, stream = seen[3], seen[4], int.from_bytes(seen[5:9], "big") & 0x7FFFFFFF
            if kind == 4 and not flags & 1:
                sock.sendall(frame(4, 1, 0, b""))  # SETTINGS ack
            if stream == 1 and kind in (0, 1) and flags & 1:
                return
            if kind == 3 or kind == 7:
                raise SystemExit("stream reset or GOAWAY")
            seen = seen[9 + size:]
        chunk = sock.recv(16384)
        if not chunk:
            raise SystemExit("closed")
        seen += chunk


def connect():
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if protocol.startswith("tls"):
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2"] if protocol == "tls-h2" else ["http/1.1"])
        sock = context.wrap_socket(sock, server_hostname="localhost")
    if protocol in ("http1", "tls"):
        sock.sendall(HTTP1)
        read_http1(sock)
    elif protocol in ("h2c", "tls-h2"):
        sock.sendall(h2_request())
        read_h2(sock)
    return sock


time.sleep(PAUSE)
before, cpu_before = rss_kib(), cpu_us()
started = time.monotonic()
sockets = [connect() for _ in range(count)]
opened, cpu = time.monotonic() - started, cpu_us() - cpu_before
time.sleep(PAUSE)
after = rss_kib()
print(f"{protocol}: {count} idle connections, gateway RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB, "
      f"{(after - before) / count:.2f} KiB per connection; connect + first request: gateway CPU "
      f"{cpu / count:.0f} us, client-seen {opened / count * 1e6:.0f} us")
for sock in sockets:
    sock.close()
