"""Pure builders of the objects the operator owns: API objects in, Kubernetes manifests out.

No client, no settings lookups, no clock: every input is an argument, so the operator and
`corral render` produce byte-identical objects. `children.render` is the entry point.
"""
