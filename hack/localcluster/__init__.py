"""A local Kubernetes control plane on loopback for Corral's tests, demo and developers.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (one fake node whose pods
become Running and Ready), plus pinned kubectl and helm. Binaries are built from their Go modules
into `~/.cache/corral/bin`; the cluster state lives in `<repo>/.cluster`. Entry points:
`hack/cluster.py` (CLI) and the `cluster` fixture in `tests/conftest.py`, both calling
`localcluster.cluster`.
"""
