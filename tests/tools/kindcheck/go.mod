module mt5db.local/tools/kindcheck

go 1.26

require (
	sigs.k8s.io/kind v0.31.0
	sigs.k8s.io/yaml v1.4.0
)

require github.com/pkg/errors v0.9.1 // indirect
