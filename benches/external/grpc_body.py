"""Writes the gRPC request body (5-byte frame header + protobuf) of tai.Governor/ProposePolicy
for the same Policy the JSON benchmarks send, so h2load can call the stub directly."""
import sys


def field(number, payload):
    return bytes([number << 3 | 2, len(payload)]) + payload


def entry(key, value):
    return field(4, field(1, key) + field(2, value))


policy = field(2, b"access") + field(3, b"deny-external") + entry(b"effect", b"deny") + entry(b"scope", b"external")
with open(sys.argv[1], "wb") as out:
    out.write(b"\x00" + len(policy).to_bytes(4, "big") + policy)
