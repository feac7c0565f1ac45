# A kind cluster for local development, made and removed by the kind CLI. apply needs a
# container engine (Docker or Podman) and the kindest/node image; validate and plan do not.

locals {
  kubeconfig_path = pathexpand(coalesce(var.kubeconfig_path, "~/.kube/kind-${var.name}.yaml"))
}

resource "terraform_data" "cluster" {
  # A different name, config, image or kubeconfig is a different cluster.
  input = {
    name       = var.name
    config     = filesha256(var.config_path)
    node_image = var.node_image
    kubeconfig = local.kubeconfig_path
    kind       = var.kind
  }

  provisioner "local-exec" {
    command = "\"$KIND\" create cluster --name \"$NAME\" --config \"$CONFIG\" --kubeconfig \"$KUBECONFIG\" --wait \"$WAIT\" $${NODE_IMAGE:+--image \"$NODE_IMAGE\"}"
    environment = {
      KIND       = var.kind
      NAME       = var.name
      CONFIG     = abspath(var.config_path)
      KUBECONFIG = local.kubeconfig_path
      WAIT       = var.wait
      NODE_IMAGE = var.node_image == null ? "" : var.node_image
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "\"$KIND\" delete cluster --name \"$NAME\" --kubeconfig \"$KUBECONFIG\""
    environment = {
      KIND       = self.input.kind
      NAME       = self.input.name
      KUBECONFIG = self.input.kubeconfig
    }
  }
}
