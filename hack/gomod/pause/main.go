// The pause process of the real node's pause image (hack/localcluster/images.py builds the
// image; no registry is reachable): it holds a pod's namespaces open, reaps the zombies that
// share its PID namespace, and exits on SIGINT or SIGTERM, like Kubernetes' own pause.c.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
