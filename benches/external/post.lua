-- wrk: POST /v1/policies/propose with the benchmarks' Policy JSON on every request.
wrk.method = "POST"
wrk.body = '{"policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"}}'
wrk.headers["Content-Type"] = "application/json"
