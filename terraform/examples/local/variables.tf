variable "create_cluster" {
  description = "Make a kind cluster first (needs Docker or Podman); false = use kubeconfig_path/kube_context."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "Name of the kind cluster."
  type        = string
  default     = "mt5db"
}

variable "kubeconfig_path" {
  description = "Kubeconfig of an existing cluster (with create_cluster = false)."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "Context of kubeconfig_path (with create_cluster = false; null = its current context)."
  type        = string
  default     = null
}

variable "namespace" {
  description = "Namespace of the TradingStack."
  type        = string
  default     = "mt5db"
}

variable "operator_namespace" {
  description = "Namespace of the operator."
  type        = string
  default     = "mt5db-system"
}

variable "stack_name" {
  description = "Name of the TradingStack."
  type        = string
  default     = "mt5db"
}

variable "operator_image" {
  description = "The operator image (kind: load it with `kind load docker-image` first)."
  type = object({
    repository  = string
    tag         = optional(string)
    pull_policy = optional(string, "IfNotPresent")
  })
  default = { repository = "ghcr.io/mt5db/mt5db-operator" }
}

variable "api_image" {
  description = "The API image, pinned."
  type        = string
  default     = "ghcr.io/mt5db/mt5db-api:0.1.0"
}

variable "backup_schedule" {
  description = "Cron (UTC) of a nightly verified backup; null = no BackupPolicy."
  type        = string
  default     = "0 3 * * *"
}

variable "ready_timeout" {
  description = "How long the apply waits for the TradingStack to be Ready."
  type        = string
  default     = "10m"
}

variable "kubectl" {
  description = "The kubectl binary."
  type        = string
  default     = "kubectl"
}
