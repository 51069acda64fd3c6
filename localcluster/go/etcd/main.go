// Command etcd is the upstream etcd server; a wrapper module is needed because the
// server module's go.mod carries replace directives that block `go install`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
