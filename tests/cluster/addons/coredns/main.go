// CoreDNS with only the plugins the e2e node's Corefile uses (manifests/coredns.yaml): CoreDNS's
// own way to choose plugins at compile time is a main that imports them and sets the directive
// order. The upstream main imports every plugin, with the cloud SDKs of route53, azure and
// clouddns; this one builds in a fraction of the time.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

func init() {
	// The order plugins run in, as in CoreDNS's plugin.cfg (not the Corefile's order).
	dnsserver.Directives = []string{"ready", "health", "errors", "cache", "template", "kubernetes"}
}

func main() {
	coremain.Run()
}
