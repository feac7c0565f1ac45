output "name" {
  description = "Name of the kind cluster."
  value       = var.name
  depends_on  = [terraform_data.cluster]
}

output "kubeconfig_path" {
  description = "The cluster's kubeconfig file (written by kind; holds the cluster's admin credentials, so only its path is an output)."
  value       = local.kubeconfig_path
  depends_on  = [terraform_data.cluster]
}

output "context" {
  description = "The cluster's kubeconfig context; Tilt treats kind-* contexts as local development clusters."
  value       = "kind-${var.name}"
  depends_on  = [terraform_data.cluster]
}
