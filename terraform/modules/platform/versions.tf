terraform {
  # terraform test with plan-mode runs, terraform_data, optional object attributes.
  required_version = ">= 1.7"

  required_providers {
    # Tested with helm 1.3.2 and kubernetes 1.13.4 built from their Go modules (the newest the
    # module proxy serves here); written in the block syntax the 2.x providers accept too.
    helm = {
      source  = "hashicorp/helm"
      version = ">= 1.3.2, < 3.0.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 1.13.4, < 3.0.0"
    }
  }
}
