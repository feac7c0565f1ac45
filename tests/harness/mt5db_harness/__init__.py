"""The development and test harness: real services (Kubernetes control plane, Prometheus) and the
tools they need, started on loopback. Installed for development only; no image carries it."""
