"""Keep-alive HTTP/1.1 client for instructions.sh: waits for the gateway, then sends N
POST /v1/policies/propose requests on one connection and checks every answer is 200."""
import http.client
import sys
import time

port, count = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):
    try:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        probe.request("GET", "/v1/policies")
        probe.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
body = b'{"policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"}}'
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(count):
    connection.request("POST", "/v1/policies/propose", body, {"content-type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        sys.exit(f"unexpected {response.status}: {answer!r}")
