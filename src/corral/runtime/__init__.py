"""The runtime: one process serving one Agent over the OpenAI chat API (`corral runtime`).

Layers, outermost first: `main` (process, signals) -> `app` (factory, lifespan) ->
`middleware` (request id, drain, metrics, access log) -> `routes` (thin HTTP) -> `serving`
(the request's logic, no web framework) -> `agentloop` (model turns and tool calls) ->
`providers` (the model SDKs, behind one interface) and `tools` (HTTP and agent tools).
Beside them: `protocol` (wire schemas), `errors` (the one mapping to HTTP), `auth`,
`ratelimit`, `memory`, `metrics`, `logging`, `settings`. Never imports `corral.operator`.
"""
