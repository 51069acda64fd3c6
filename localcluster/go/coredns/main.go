// CoreDNS with only the plugins the local cluster's Corefile uses (errors, health, ready,
// kubernetes, cache). The stock binary links every plugin, cloud SDKs included, which made
// it the slowest build of a fresh machine's real node.
package main

import (
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
