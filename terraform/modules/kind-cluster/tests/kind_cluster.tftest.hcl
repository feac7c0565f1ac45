# Plan-mode tests of the kind-cluster module: variables are validated and the command kind would
# run is rendered; nothing is created (apply needs a container engine).

variables {
  config_path = "../../../kind/cluster.yaml"
}

run "defaults" {
  command = plan

  assert {
    condition     = output.context == "kind-mt5db" && output.name == "mt5db"
    error_message = "the context is kind-<name>"
  }
  assert {
    condition     = endswith(output.kubeconfig_path, "/.kube/kind-mt5db.yaml")
    error_message = "the kubeconfig defaults to ~/.kube/kind-<name>.yaml"
  }
  assert {
    condition     = terraform_data.cluster.input.config == filesha256("../../../kind/cluster.yaml")
    error_message = "a changed kind config is a new cluster"
  }
}

run "a_pinned_node_image_and_own_kubeconfig" {
  command = plan
  variables {
    name            = "dev-2"
    node_image      = "kindest/node:v1.34.0"
    kubeconfig_path = "/tmp/dev-2.kubeconfig"
  }
  assert {
    condition     = output.context == "kind-dev-2" && output.kubeconfig_path == "/tmp/dev-2.kubeconfig"
    error_message = "name and kubeconfig are taken as given"
  }
}

run "rejects_a_latest_node_image" {
  command = plan
  variables {
    node_image = "kindest/node:latest"
  }
  expect_failures = [var.node_image]
}

run "rejects_a_missing_config" {
  command = plan
  variables {
    config_path = "no-such-file.yaml"
  }
  expect_failures = [var.config_path]
}

run "rejects_an_invalid_name" {
  command = plan
  variables {
    name = "Not_A_Name"
  }
  expect_failures = [var.name]
}
