"""The web console (`corral console`) and the terminal chat (`corral chat`).

Reads and writes the cluster with the user's own credentials (their kubeconfig, or the pod's
ServiceAccount in the cluster); imports `corral.api` for names and models, never the operator
or the runtime (an import-linter contract in pyproject.toml keeps it so).
"""
