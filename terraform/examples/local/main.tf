# Local use end to end: a kind cluster (optional), then the platform on it.
#
#   terraform init && terraform apply
#
# See terraform/README.md. With create_cluster = false the platform goes onto the cluster of
# kubeconfig_path/kube_context instead (this is how the tests apply it).

module "cluster" {
  source      = "../../modules/kind-cluster"
  count       = var.create_cluster ? 1 : 0
  name        = var.cluster_name
  config_path = "${path.module}/../../../kind/cluster.yaml"
}

locals {
  kubeconfig = var.create_cluster ? module.cluster[0].kubeconfig_path : pathexpand(var.kubeconfig_path)
  context    = var.create_cluster ? module.cluster[0].context : var.kube_context
}

provider "kubernetes" {
  config_path    = local.kubeconfig
  config_context = local.context
}

provider "helm" {
  kubernetes {
    config_path    = local.kubeconfig
    config_context = local.context
  }
}

module "platform" {
  source = "../../modules/platform"

  namespace          = var.namespace
  operator_namespace = var.operator_namespace
  operator_image     = var.operator_image
  stack_name         = var.stack_name
  api_image          = var.api_image
  api_replicas       = { min = 1, max = 2 }
  database           = { storage_size = "5Gi" }
  backup             = var.backup_schedule == null ? null : { schedule = var.backup_schedule }
  ready_timeout      = var.ready_timeout
  kubeconfig_path    = local.kubeconfig
  kube_context       = local.context
  kubectl            = var.kubectl
}
