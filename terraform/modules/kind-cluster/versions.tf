terraform {
  # No provider: the kind CLI does the work (the tehcyx/kind provider's module is not served by
  # the Go module proxy here, and the CLI is what a kind user has anyway).
  required_version = ">= 1.7"
}
