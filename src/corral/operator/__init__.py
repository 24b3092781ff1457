"""The Corral operator: Kopf handlers that turn Agents into runtime Deployments.

The reconcile of one Agent reads as four steps, each in its own module:
`resolving` (references -> resolved inputs, reads only), `rendering` (pure builders of the
desired ConfigMap, Deployment, Service and PodDisruptionBudget), `applying` (the only writer:
server-side apply, skipped when nothing changed) and `statuses` (pure: observed objects ->
conditions). `reconciling` strings them together; `handlers` wires them to Kopf.
"""
