"""The pinned versions of every binary the local control plane and the tests run: bump them here.

Pure data; no I/O. `hack/gomod/*/go.mod` pins the same Kubernetes, etcd and OpenTelemetry
Collector versions for the Go build (`binaries.check_gomod_pins` refuses to build when they
disagree), so bump both together; `hack/kwok/stages.yaml` is copied from the kwok release named
here.
"""

from __future__ import annotations

KUBERNETES = "1.35.4"  # also kubelet and kube-proxy, the real node's
CONTAINERD = "2.2.9"
CNI_PLUGINS = "1.9.0"
COREDNS = "1.14.7"
ETCD = "3.6.16"
KWOK = "0.8.0"
HELM = "4.3.1"
# The collector core release (go.opentelemetry.io/collector/otelcol) and the contrib release of
# its file exporter: one release line, bumped together (see hack/gomod/otelcol/go.mod).
OTELCOL = "0.161.0"
OTELCOL_CONTRIB = "0.161.0"
