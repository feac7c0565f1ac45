module mt5db.local/tools/dashcheck

go 1.26

require github.com/grafana/grafana-foundation-sdk/go v0.0.22
