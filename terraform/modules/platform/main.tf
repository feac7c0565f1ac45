# The platform on an existing cluster: the operator chart (CRDs, RBAC, the operator), then one
# TradingStack (and optionally a BackupPolicy) carried by a tiny second chart, and an apply that
# ends only when the stack reports Ready.
#
# The custom resources go through helm_release rather than kubernetes_manifest because the
# latter needs the CRD to exist when the plan is made, before the operator chart installed it.

locals {
  operator_chart = coalesce(var.operator_chart, "${path.module}/../../../charts/mt5db-operator")

  # Pod Security "restricted" on both namespaces: every pod of the platform is built for it.
  pod_security = {
    "pod-security.kubernetes.io/enforce" = "restricted"
    "pod-security.kubernetes.io/warn"    = "restricted"
  }

  operator_values = {
    image = merge(
      { repository = var.operator_image.repository, pullPolicy = var.operator_image.pull_policy },
      var.operator_image.tag == null ? {} : { tag = var.operator_image.tag },
    )
    watch = {
      allNamespaces = length(var.operator_watch_namespaces) == 0
      namespaces    = var.operator_watch_namespaces
    }
    resyncSeconds = var.operator_resync_seconds
  }

  thresholds = {
    for key, value in {
      errorRatio        = var.monitoring.thresholds.error_ratio
      latencyP95Seconds = var.monitoring.thresholds.latency_p95_seconds
      stallMinutes      = var.monitoring.thresholds.stall_minutes
      duplicateRatio    = var.monitoring.thresholds.duplicate_ratio
    } : key => value if value != null
  }

  # The TradingStack's spec, in the CRD's field names (crds/tradingstacks.mt5db.io.yaml).
  stack_spec = {
    database = {
      storage = merge(
        { size = var.database.storage_size },
        var.database.storage_class_name == null ? {} : { storageClassName = var.database.storage_class_name },
      )
      trainingWindowDays = var.database.training_window_days
      timescale          = { retentionDays = var.database.retention_days }
    }
    api = merge(
      { image = var.api_image, minReplicas = var.api_replicas.min, maxReplicas = var.api_replicas.max },
      var.api_rate_limit == null ? {} : {
        rateLimit = { requestsPerSecond = var.api_rate_limit.requests_per_second, burst = var.api_rate_limit.burst }
      },
      var.ingress == null ? {} : {
        ingress = merge(
          { host = var.ingress.host },
          var.ingress.class_name == null ? {} : { className = var.ingress.class_name },
          var.ingress.tls_secret_name == null ? {} : { tlsSecretName = var.ingress.tls_secret_name },
        )
      },
    )
    monitoring = {
      enabled     = var.monitoring.enabled
      extraLabels = var.monitoring.extra_labels
      thresholds  = local.thresholds
    }
  }

  backup_name = "${var.stack_name}-backup"
  backup_spec = var.backup == null ? null : {
    stackRef    = { name = var.stack_name }
    schedule    = var.backup.schedule
    retention   = { keepLast = var.backup.keep_last, maxAge = var.backup.max_age }
    destination = { pvc = { size = var.backup.pvc_size } }
    verify      = var.backup.verify
  }

  stack_values = {
    stack  = { name = var.stack_name, spec = local.stack_spec }
    backup = local.backup_spec == null ? null : { name = local.backup_name, spec = local.backup_spec }
  }
}

resource "kubernetes_namespace" "operator" {
  count = var.create_namespaces ? 1 : 0
  metadata {
    name   = var.operator_namespace
    labels = local.pod_security
  }
}

resource "kubernetes_namespace" "stack" {
  count = var.create_namespaces && var.namespace != var.operator_namespace ? 1 : 0
  metadata {
    name   = var.namespace
    labels = local.pod_security
  }
}

resource "helm_release" "operator" {
  name      = var.operator_release_name
  namespace = var.operator_namespace
  chart     = local.operator_chart
  values    = [yamlencode(local.operator_values)]
  # The operator's own readiness is not the stack's: the wait below covers both.
  wait       = false
  depends_on = [kubernetes_namespace.operator]
}

resource "helm_release" "stack" {
  name      = "${var.stack_name}-stack"
  namespace = var.namespace
  chart     = "${path.module}/charts/mt5db-stack"
  values    = [yamlencode(local.stack_values)]
  wait      = false
  # The CRDs arrive with the operator chart.
  depends_on = [helm_release.operator, kubernetes_namespace.stack]
}

resource "terraform_data" "stack_ready" {
  count = var.wait_for_ready ? 1 : 0
  # Wait again whenever what the stack is made of changes.
  triggers_replace = [sha256(jsonencode(local.stack_values)), helm_release.stack.id]

  provisioner "local-exec" {
    command = "\"$KUBECTL\" wait --for=condition=Ready \"tradingstack/$STACK\" --namespace \"$NAMESPACE\" --timeout \"$TIMEOUT\" $${KUBE_CONTEXT:+--context \"$KUBE_CONTEXT\"}"
    environment = {
      KUBECTL      = var.kubectl
      KUBECONFIG   = var.kubeconfig_path == null ? "" : pathexpand(var.kubeconfig_path)
      KUBE_CONTEXT = var.kube_context == null ? "" : var.kube_context
      STACK        = var.stack_name
      NAMESPACE    = var.namespace
      TIMEOUT      = var.ready_timeout
    }
  }
}
