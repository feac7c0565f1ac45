# Plan-mode tests of the platform module: every variable is validated, and what the module would
# apply (the TradingStack, the BackupPolicy, the operator's values, the namespaces) is rendered
# as expected. The providers are the real ones; a plan reads nothing from a cluster.
# (The apply against a real API server is tests/integration/terraform/test_platform_apply.py.)

provider "kubernetes" {
  config_path = "/nonexistent/kubeconfig"
}

provider "helm" {
  kubernetes {
    config_path = "/nonexistent/kubeconfig"
  }
}

run "defaults_leave_the_crd_defaults_alone" {
  command = plan

  assert {
    condition = output.tradingstack.spec.api == {
      image = "ghcr.io/mt5db/mt5db-api:0.1.0", minReplicas = 2, maxReplicas = 4
    }
    error_message = "the API spec is the image and the replica bounds only"
  }
  assert {
    condition     = output.tradingstack.spec.monitoring.thresholds == {} && output.tradingstack.spec.monitoring.enabled
    error_message = "unset thresholds are left to the CRD's defaults"
  }
  assert {
    condition     = yamldecode(helm_release.stack.values[0]).backup == null && output.backup_policy == null
    error_message = "no BackupPolicy unless asked"
  }
  assert {
    condition     = kubernetes_namespace.stack[0].metadata[0].labels["pod-security.kubernetes.io/enforce"] == "restricted"
    error_message = "the stack's namespace enforces Pod Security restricted"
  }
  assert {
    condition     = yamldecode(helm_release.operator.values[0]).watch.allNamespaces == true
    error_message = "the operator watches every namespace by default"
  }
  assert {
    condition     = length(terraform_data.stack_ready) == 1
    error_message = "the apply waits for Ready by default"
  }
  assert {
    condition     = output.api_key_secret == { name = "mt5db-api-key", key = "api-key" }
    error_message = "the key's Secret is named, never output"
  }
}

run "everything_set" {
  command = plan
  variables {
    stack_name                = "trading"
    namespace                 = "desk"
    operator_watch_namespaces = ["desk"]
    operator_image            = { repository = "localhost/mt5db-operator", tag = "dev-1", pull_policy = "Never" }
    api_image                 = "localhost/mt5db-api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    api_replicas              = { min = 1, max = 3 }
    api_rate_limit            = { requests_per_second = 100, burst = 400 }
    ingress                   = { host = "mt5db.example.com", class_name = "nginx" }
    database                  = { storage_size = "50Gi", storage_class_name = "fast", training_window_days = 730, retention_days = 1095 }
    monitoring                = { extra_labels = { release = "kube-prometheus-stack" }, thresholds = { error_ratio = 0.1, stall_minutes = 30 } }
    backup                    = { schedule = "0 3 * * *", keep_last = 14 }
    wait_for_ready            = false
  }

  assert {
    condition = output.tradingstack.spec.database == {
      storage            = { size = "50Gi", storageClassName = "fast" }
      trainingWindowDays = 730
      timescale          = { retentionDays = 1095 }
    }
    error_message = "database fields in the CRD's names"
  }
  assert {
    condition = output.tradingstack.spec.api.ingress == { host = "mt5db.example.com", className = "nginx" } && (
    output.tradingstack.spec.api.rateLimit == { requestsPerSecond = 100, burst = 400 })
    error_message = "ingress and rate limit in the CRD's names"
  }
  assert {
    condition     = output.tradingstack.spec.monitoring.thresholds == { errorRatio = 0.1, stallMinutes = 30 }
    error_message = "only the thresholds given are set"
  }
  assert {
    condition = yamldecode(helm_release.stack.values[0]).backup == {
      name = "trading-backup"
      spec = {
        stackRef    = { name = "trading" }
        schedule    = "0 3 * * *"
        retention   = { keepLast = 14, maxAge = "30d" }
        destination = { pvc = { size = "20Gi" } }
        verify      = true
      }
    }
    error_message = "the BackupPolicy references the stack and verifies by default"
  }
  assert {
    condition = yamldecode(helm_release.operator.values[0]) == {
      image         = { repository = "localhost/mt5db-operator", tag = "dev-1", pullPolicy = "Never" }
      watch         = { allNamespaces = false, namespaces = ["desk"] }
      resyncSeconds = 60
    }
    error_message = "the operator's chart values"
  }
  assert {
    condition     = helm_release.stack.namespace == "desk" && helm_release.operator.namespace == "mt5db-system"
    error_message = "each release in its namespace"
  }
  assert {
    condition     = length(terraform_data.stack_ready) == 0
    error_message = "no wait when not asked"
  }
}

run "existing_namespaces" {
  command = plan
  variables {
    create_namespaces = false
  }
  assert {
    condition     = length(kubernetes_namespace.stack) == 0 && length(kubernetes_namespace.operator) == 0
    error_message = "no namespace is created"
  }
}

run "rejects_a_latest_api_image" {
  command = plan
  variables {
    api_image = "ghcr.io/mt5db/mt5db-api:latest"
  }
  expect_failures = [var.api_image]
}

run "rejects_an_unpinned_api_image" {
  command = plan
  variables {
    api_image = "ghcr.io/mt5db/mt5db-api"
  }
  expect_failures = [var.api_image]
}

run "rejects_a_latest_operator_tag" {
  command = plan
  variables {
    operator_image = { repository = "ghcr.io/mt5db/mt5db-operator", tag = "latest" }
  }
  expect_failures = [var.operator_image]
}

run "rejects_min_above_max" {
  command = plan
  variables {
    api_replicas = { min = 5, max = 2 }
  }
  expect_failures = [var.api_replicas]
}

run "rejects_retention_shorter_than_the_training_window" {
  command = plan
  variables {
    database = { training_window_days = 730, retention_days = 365 }
  }
  expect_failures = [var.database]
}

run "rejects_a_small_or_odd_storage_size" {
  command = plan
  variables {
    database = { storage_size = "500Mi" }
  }
  expect_failures = [var.database]
}

run "rejects_a_six_field_cron" {
  command = plan
  variables {
    backup = { schedule = "0 0 3 * * *" }
  }
  expect_failures = [var.backup]
}

run "rejects_a_zero_max_age" {
  command = plan
  variables {
    backup = { schedule = "0 3 * * *", max_age = "0d" }
  }
  expect_failures = [var.backup]
}

run "rejects_thresholds_out_of_range" {
  command = plan
  variables {
    monitoring = { thresholds = { error_ratio = 1.5, stall_minutes = 2 } }
  }
  expect_failures = [var.monitoring]
}

run "rejects_an_invalid_stack_name" {
  command = plan
  variables {
    stack_name = "Trading_Desk"
  }
  expect_failures = [var.stack_name]
}

run "rejects_an_invalid_namespace" {
  command = plan
  variables {
    namespace = "-desk"
  }
  expect_failures = [var.namespace]
}

run "rejects_an_invalid_ingress_host" {
  command = plan
  variables {
    ingress = { host = "not a host" }
  }
  expect_failures = [var.ingress]
}

run "rejects_a_bad_ready_timeout" {
  command = plan
  variables {
    ready_timeout = "ten minutes"
  }
  expect_failures = [var.ready_timeout]
}
