// CoreDNS with only the plugins the local node's cluster DNS uses (hack/localcluster/node.py
// writes its Corefile): building every plugin would pull in every cloud provider's SDK.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	"github.com/coredns/coredns/coremain"
)

// The order plugins run in, a subset of CoreDNS' plugin.cfg (the order matters, not the list).
var directives = []string{
	"bind", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes", "forward",
}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
