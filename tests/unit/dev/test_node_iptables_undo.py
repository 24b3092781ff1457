"""`hoststate.undo_script`: what iptables-restore must do to take the node's chains and rules
out again, leaving everything that was there before (pure: iptables-save text in, text out)."""

from __future__ import annotations

from localcluster import hoststate

BEFORE = """\
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKERISH - [0:0]
-A PREROUTING -j DOCKERISH
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j ACCEPT
COMMIT
"""

AFTER = """\
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKERISH - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
-A PREROUTING -j DOCKERISH
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -o eth0 -j MASQUERADE
-A POSTROUTING -o eth0 -j MASQUERADE
-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-ABC
-A KUBE-SVC-ABC -j DNAT --to-destination 192.0.2.2:6443
COMMIT
*filter
:INPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:KUBE-IPTABLES-HINT - [0:0]
COMMIT
"""


def test_undo_deletes_added_rules_then_flushes_and_deletes_added_chains() -> None:
    assert hoststate.undo_script(BEFORE, AFTER).splitlines() == [
        "*nat",
        '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-D POSTROUTING -o eth0 -j MASQUERADE",  # the second copy only: one was there before
        "-F KUBE-SERVICES",
        "-F KUBE-SVC-ABC",
        "-X KUBE-SERVICES",
        "-X KUBE-SVC-ABC",
        "COMMIT",
        "*mangle",
        "-F KUBE-IPTABLES-HINT",
        "-X KUBE-IPTABLES-HINT",
        "COMMIT",
    ]


def test_nothing_added_means_nothing_to_undo() -> None:
    assert hoststate.undo_script(BEFORE, BEFORE) == ""
