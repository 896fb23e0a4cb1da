-- wrk script: one short greedy chat completion per request (the load bench of `k2gym serve`).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"k2gym","messages":[{"role":"user","content":"Hello there, how is the weather?"}],"max_tokens":8,"temperature":0}'
