// Command pause is the pod sandbox's init process: it holds the pod's namespaces, reaps
// orphaned children and exits on SIGINT/SIGTERM, like Kubernetes' pause.c. It is built here
// because this machine reaches no image registry to pull registry.k8s.io/pause from.
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
		// As PID 1 of the pod, collect every exited orphan so no zombie piles up.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
