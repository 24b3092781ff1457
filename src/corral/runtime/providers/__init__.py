"""Model providers behind one interface (`base.Provider`), and the failover chain over them.

`factory.build_chain` is the entry point used at runtime startup: it builds one long-lived
provider per configured model (`openai`, `gemini`) and wraps them in a `failover.FailoverChain`
(retries with backoff, failover, per-model circuit breakers). The agent loop only sees the
`base.Provider` face; nothing here imports the web framework or the metrics module.
"""
