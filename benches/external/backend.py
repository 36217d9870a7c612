"""A gRPC backend that is not the Rust stub, for benches/external/run.sh (issue 14): grpcio's
asyncio server (gRPC C-core's HTTP/2, as Python, Ruby, PHP and C++ servers use) answering
tai.Governor/ProposePolicy with a Receipt, and grpc.health.v1.Health/Check with SERVING. Messages
are handled as raw protobuf bytes, so no generated code is needed. Takes the stub binary's
arguments, so it can stand in for it:

    pip install grpcio
    STUBS=benches/external/backend.py bash benches/external/run.sh

--governor-addr HOST:PORT is served; --coordinator-addr is accepted and ignored.
"""
import argparse
import asyncio
import itertools

import grpc


def field(number, payload):
    """A length-delimited protobuf field (payloads under 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


RECEIPTS = itertools.count(1)


async def propose_policy(request, context):
    """Receipt{id, status, policy_id} for a Policy, as the stub answers it."""
    n = next(RECEIPTS)
    return (
        field(1, b"rcpt-%06d" % n)
        + field(2, b"pending")
        + field(3, b"pol-%06d" % n)
    )


async def health_check(request, context):
    """HealthCheckResponse{status: SERVING}."""
    return b"\x08\x01"


def unary(handler):
    # No (de)serializers: the handler gets and returns the message bytes.
    return grpc.unary_unary_rpc_method_handler(handler)


async def serve(address):
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "tai.Governor", {"ProposePolicy": unary(propose_policy)}
            ),
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health", {"Check": unary(health_check)}
            ),
        )
    )
    server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--governor-addr", required=True)
    parser.add_argument("--coordinator-addr")
    asyncio.run(serve(parser.parse_args().governor_addr))


if __name__ == "__main__":
    main()
