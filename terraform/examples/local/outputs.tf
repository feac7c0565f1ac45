output "kube_context" {
  description = "The kubeconfig context the platform went onto."
  value       = local.context
}

output "namespace" {
  description = "Namespace of the TradingStack."
  value       = module.platform.namespace
}

output "api_key_secret" {
  description = "Where the first API key is (read it with kubectl; it is not an output)."
  value       = module.platform.api_key_secret
}

output "port_forward_command" {
  description = "Reach the API on http://127.0.0.1:18001."
  value       = module.platform.port_forward_command
}
