"""How the operator benchmark groups the API requests it counted (results.json)."""

from __future__ import annotations

from bench import kubeproxy, operator_suite


def test_requests_are_grouped_by_verb_and_resource_without_names() -> None:
    seen = [
        kubeproxy.Seen(0.0, "patch", "/apis/corral.dev/v1alpha1/namespaces/a/agents/x/status"),
        kubeproxy.Seen(0.1, "patch", "/apis/corral.dev/v1alpha1/namespaces/b/agents/y/status"),
        kubeproxy.Seen(0.2, "read", "/api/v1/namespaces/a/configmaps/x-runtime"),
        kubeproxy.Seen(0.3, "create", "/api/v1/namespaces/a/events"),
        kubeproxy.Seen(0.4, "watch", "/apis/apps/v1/deployments?watch=true&labelSelector=x"),
        kubeproxy.Seen(0.5, "read", "/api/v1/namespaces/a"),
    ]
    assert operator_suite._by_resource(seen) == {
        "patch agents/status": 2,
        "read configmaps": 1,
        "create events": 1,
        "watch deployments": 1,
        "read namespaces": 1,
    }
