// dashcheck validates Grafana dashboard JSON files with the Grafana Foundation SDK: a strict
// unmarshal (unknown fields, wrong types and missing required fields are errors; panel options
// and Prometheus queries are decoded by their plugin's own schema) followed by Validate().
//
// Usage: dashcheck FILE...   (prints one line per file; exit 1 if any file fails)
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// failure drops the SDK's typed-nil error: its generated code returns an empty cog.BuildErrors
// slice as a non-nil error when nothing is wrong.
func failure(err error) error {
	var list cog.BuildErrors
	if err == nil || (errors.As(err, &list) && len(list) == 0) {
		return nil
	}
	return err
}

func check(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var board dashboard.Dashboard
	if err := failure(board.UnmarshalJSONStrict(raw)); err != nil {
		return fmt.Errorf("strict unmarshal: %w", err)
	}
	if err := failure(board.Validate()); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashcheck FILE...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failed = true
			continue
		}
		fmt.Printf("ok %s\n", path)
	}
	if failed {
		os.Exit(1)
	}
}
