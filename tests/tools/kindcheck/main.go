// kindcheck decodes kind cluster configs strictly into kind's own v1alpha4.Cluster type, the
// way `kind create cluster --config` reads them: unknown fields and wrong types are errors.
// kind's semantic checks need a container engine and are not run here.
//
// Usage: kindcheck FILE...   (prints one line per file; exit 1 if any file fails)
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func check(path string) (*v1alpha4.Cluster, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cluster v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &cluster); err != nil {
		return nil, err
	}
	if cluster.Kind != "Cluster" || cluster.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return nil, fmt.Errorf("kind/apiVersion must be Cluster / kind.x-k8s.io/v1alpha4, got %q / %q",
			cluster.Kind, cluster.APIVersion)
	}
	return &cluster, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kindcheck FILE...")
		os.Exit(2)
	}
	failed := false
	for _, path := range os.Args[1:] {
		cluster, err := check(path)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failed = true
			continue
		}
		roles := []string{}
		for _, node := range cluster.Nodes {
			roles = append(roles, string(node.Role))
		}
		fmt.Printf("ok %s: name=%s nodes=%v\n", path, cluster.Name, roles)
	}
	if failed {
		os.Exit(1)
	}
}
