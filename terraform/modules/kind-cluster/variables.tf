variable "name" {
  description = "Name of the kind cluster; its kubeconfig context is kind-<name>."
  type        = string
  default     = "mt5db"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$", var.name))
    error_message = "name must be lower-case letters, digits and '-', at most 32 characters."
  }
}

variable "config_path" {
  description = "The kind cluster config (kind.x-k8s.io/v1alpha4 Cluster), e.g. kind/cluster.yaml of this repository."
  type        = string
  validation {
    condition     = fileexists(var.config_path)
    error_message = "config_path must name an existing kind config file."
  }
}

variable "node_image" {
  description = "kindest/node image pinned by tag or digest; null = the one this kind version pins."
  type        = string
  default     = null
  validation {
    condition     = var.node_image == null || try(can(regex("^[^:@\\s]+(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[a-f0-9]{64})$", var.node_image)) && !endswith(var.node_image, ":latest"), false)
    error_message = "node_image must be pinned (repository:tag, never :latest, or repository@sha256:digest)."
  }
}

variable "kubeconfig_path" {
  description = "Where kind writes the cluster's kubeconfig (null = ~/.kube/kind-<name>.yaml)."
  type        = string
  default     = null
}

variable "wait" {
  description = "How long kind waits for the control plane to be Ready, e.g. 120s."
  type        = string
  default     = "120s"
  validation {
    condition     = can(regex("^[1-9][0-9]*(s|m)$", var.wait))
    error_message = "wait must be a duration such as 120s or 2m."
  }
}

variable "kind" {
  description = "The kind binary."
  type        = string
  default     = "kind"
}
