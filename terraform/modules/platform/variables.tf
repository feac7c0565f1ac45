# -- where ---------------------------------------------------------------------------------------

variable "namespace" {
  description = "Namespace of the TradingStack (and its BackupPolicy)."
  type        = string
  default     = "mt5db"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label: lower-case letters, digits and '-', at most 63 characters."
  }
}

variable "operator_namespace" {
  description = "Namespace of the operator's Helm release."
  type        = string
  default     = "mt5db-system"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.operator_namespace))
    error_message = "operator_namespace must be a DNS label."
  }
}

variable "create_namespaces" {
  description = "Create both namespaces (labelled for Pod Security `restricted`); false when they exist."
  type        = bool
  default     = true
}

# -- the operator ---------------------------------------------------------------------------------

variable "operator_chart" {
  description = "Path (or repository chart name) of the mt5db-operator chart; null = the chart of this repository."
  type        = string
  default     = null
}

variable "operator_release_name" {
  description = "Name of the operator's Helm release."
  type        = string
  default     = "mt5db"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", var.operator_release_name))
    error_message = "operator_release_name must be a DNS label of at most 53 characters (a Helm release name)."
  }
}

variable "operator_image" {
  description = "Operator image; tag null = the chart's appVersion."
  type = object({
    repository  = string
    tag         = optional(string)
    pull_policy = optional(string, "IfNotPresent")
  })
  default = { repository = "ghcr.io/mt5db/mt5db-operator" }
  validation {
    condition     = var.operator_image.tag == null || try(var.operator_image.tag != "latest" && length(var.operator_image.tag) > 0, false)
    error_message = "operator_image.tag must be a pinned tag, never \"latest\"."
  }
  validation {
    condition     = contains(["Always", "IfNotPresent", "Never"], var.operator_image.pull_policy)
    error_message = "operator_image.pull_policy must be Always, IfNotPresent or Never."
  }
}

variable "operator_watch_namespaces" {
  description = "Namespaces the operator watches; empty = all namespaces."
  type        = list(string)
  default     = []
}

variable "operator_resync_seconds" {
  description = "The operator's drift-correction timer."
  type        = number
  default     = 60
  validation {
    condition     = var.operator_resync_seconds >= 1 && var.operator_resync_seconds <= 3600
    error_message = "operator_resync_seconds must be between 1 and 3600."
  }
}

# -- the TradingStack ------------------------------------------------------------------------------

variable "stack_name" {
  description = "Name of the TradingStack; its children are named after it (<name>-api, <name>-db, ...)."
  type        = string
  default     = "mt5db"
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.stack_name))
    error_message = "stack_name must start with a letter, use lower-case letters, digits and '-', and be at most 40 characters."
  }
}

variable "api_image" {
  description = "The API image, pinned by tag or digest."
  type        = string
  default     = "ghcr.io/mt5db/mt5db-api:0.1.0"
  validation {
    condition     = can(regex("^[^:@\\s]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$", var.api_image)) && !endswith(var.api_image, ":latest")
    error_message = "api_image must be pinned: repository:tag (never :latest) or repository@sha256:digest."
  }
}

variable "api_replicas" {
  description = "Autoscaling bounds of the API Deployment."
  type        = object({ min = number, max = number })
  default     = { min = 2, max = 4 }
  validation {
    condition     = var.api_replicas.min >= 1 && var.api_replicas.max <= 100 && var.api_replicas.min <= var.api_replicas.max && var.api_replicas.min <= 50
    error_message = "api_replicas needs 1 <= min <= max <= 100 (min at most 50)."
  }
}

variable "api_rate_limit" {
  description = "Requests per second and burst per API key and replica (null = the CRD's defaults)."
  type        = object({ requests_per_second = number, burst = number })
  default     = null
  validation {
    condition     = var.api_rate_limit == null || try(var.api_rate_limit.requests_per_second >= 1 && var.api_rate_limit.burst >= 1, false)
    error_message = "api_rate_limit values must be at least 1."
  }
}

variable "ingress" {
  description = "Expose the API through an Ingress (null = no Ingress)."
  type = object({
    host            = string
    class_name      = optional(string)
    tls_secret_name = optional(string)
  })
  default = null
  validation {
    condition     = var.ingress == null || can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", var.ingress.host))
    error_message = "ingress.host must be a DNS name."
  }
}

variable "database" {
  description = "The TimescaleDB the operator runs for the stack (sizes as Kubernetes quantities)."
  type = object({
    storage_size         = optional(string, "10Gi")
    storage_class_name   = optional(string)
    training_window_days = optional(number, 365)
    retention_days       = optional(number, 730)
  })
  default = {}
  validation {
    condition     = can(regex("^[1-9][0-9]*(Gi|Ti)$", var.database.storage_size))
    error_message = "database.storage_size must be a quantity of at least 1Gi, in Gi or Ti (e.g. 20Gi)."
  }
  validation {
    condition     = var.database.retention_days >= var.database.training_window_days
    error_message = "database.retention_days must be >= training_window_days: retention never deletes training data."
  }
}

variable "monitoring" {
  description = "Monitoring objects and alert thresholds (null thresholds = the CRD's defaults)."
  type = object({
    enabled      = optional(bool, true)
    extra_labels = optional(map(string), {})
    thresholds = optional(object({
      error_ratio         = optional(number)
      latency_p95_seconds = optional(number)
      stall_minutes       = optional(number)
      duplicate_ratio     = optional(number)
    }), {})
  })
  default = {}
  validation {
    condition = alltrue([
      for r in [var.monitoring.thresholds.error_ratio, var.monitoring.thresholds.duplicate_ratio] : r == null || try(r > 0 && r <= 1, false)
    ])
    error_message = "monitoring.thresholds.error_ratio and duplicate_ratio must be in (0, 1]."
  }
  validation {
    condition     = var.monitoring.thresholds.latency_p95_seconds == null || try(var.monitoring.thresholds.latency_p95_seconds > 0 && var.monitoring.thresholds.latency_p95_seconds <= 5, false)
    error_message = "monitoring.thresholds.latency_p95_seconds must be in (0, 5]."
  }
  validation {
    condition     = var.monitoring.thresholds.stall_minutes == null || try(var.monitoring.thresholds.stall_minutes >= 5 && var.monitoring.thresholds.stall_minutes <= 1440, false)
    error_message = "monitoring.thresholds.stall_minutes must be between 5 and 1440."
  }
}

# -- the BackupPolicy (optional) -------------------------------------------------------------------

variable "backup" {
  description = "A BackupPolicy for the stack (null = none): a 5-field cron in UTC, retention, a PVC destination."
  type = object({
    schedule  = string
    keep_last = optional(number, 7)
    max_age   = optional(string, "30d")
    verify    = optional(bool, true)
    pvc_size  = optional(string, "20Gi")
  })
  default = null
  validation {
    condition     = var.backup == null || can(regex("^\\S+\\s+\\S+\\s+\\S+\\s+\\S+\\s+\\S+$", var.backup.schedule))
    error_message = "backup.schedule must be a standard 5-field cron expression (no seconds field)."
  }
  validation {
    condition     = var.backup == null || try(var.backup.keep_last >= 1 && var.backup.keep_last <= 1000, false)
    error_message = "backup.keep_last must be between 1 and 1000."
  }
  validation {
    condition     = var.backup == null || can(regex("^[1-9][0-9]{0,4}(h|d)$", var.backup.max_age))
    error_message = "backup.max_age must look like 30d or 720h."
  }
}

# -- waiting for Ready -----------------------------------------------------------------------------

variable "wait_for_ready" {
  description = "End the apply only when the TradingStack reports Ready (runs kubectl wait)."
  type        = bool
  default     = true
}

variable "ready_timeout" {
  description = "How long kubectl waits for Ready, e.g. 10m."
  type        = string
  default     = "10m"
  validation {
    condition     = can(regex("^[1-9][0-9]*(s|m|h)$", var.ready_timeout))
    error_message = "ready_timeout must be a duration such as 600s, 10m or 1h."
  }
}

variable "kubeconfig_path" {
  description = "Kubeconfig kubectl uses for the wait (the providers are configured by the caller)."
  type        = string
  default     = null
}

variable "kube_context" {
  description = "Context of kubeconfig_path kubectl uses for the wait (null = its current context)."
  type        = string
  default     = null
}

variable "kubectl" {
  description = "The kubectl binary for the wait."
  type        = string
  default     = "kubectl"
}
