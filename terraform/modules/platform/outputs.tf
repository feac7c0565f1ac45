# Names and commands only: no output carries a credential.

output "namespace" {
  description = "Namespace of the TradingStack."
  value       = var.namespace
}

output "stack_name" {
  description = "Name of the TradingStack."
  value       = var.stack_name
}

output "tradingstack" {
  description = "The TradingStack as applied (apiVersion, kind, metadata, spec)."
  value = {
    apiVersion = "mt5db.io/v1alpha1"
    kind       = "TradingStack"
    metadata   = { name = var.stack_name, namespace = var.namespace }
    spec       = local.stack_spec
  }
}

output "backup_policy" {
  description = "Name of the BackupPolicy, or null without one."
  value       = local.backup_spec == null ? null : local.backup_name
}

output "api_service" {
  description = "In-cluster address of the API."
  value       = "http://${var.stack_name}-api.${var.namespace}.svc:8000"
}

output "api_key_secret" {
  description = "The Secret (and key) that holds the first API key the operator generated: read it with kubectl, it is not an output."
  value       = { name = "${var.stack_name}-api-key", key = "api-key" }
}

output "port_forward_command" {
  description = "Reach the API from this machine on port 18001."
  value       = "kubectl port-forward --namespace ${var.namespace} service/${var.stack_name}-api 18001:8000"
}

output "operator_release" {
  description = "The operator's Helm release: name, namespace, chart version."
  value = {
    name      = helm_release.operator.name
    namespace = helm_release.operator.namespace
    version   = helm_release.operator.version
  }
}
