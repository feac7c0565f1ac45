#!/usr/bin/env bash
# Tilt button "start-trainingrun": a new TrainingRun from examples/trainingrun.yaml (its spec is
# immutable, so every press creates one with a fresh name), pointed at the stack; with the
# training image Tilt built when there is one ($TILT_IMAGE_0). Prints the created object, as
# Tilt's k8s_custom_deploy expects.
#   env: NAMESPACE, STACK; optional TILT_IMAGE_0
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python - "$NAMESPACE" "$STACK" "${TILT_IMAGE_0:-}" <<'PY' | kubectl create --namespace "$NAMESPACE" -o yaml -f -
import sys

import yaml

namespace, stack, image = sys.argv[1:4]
with open("examples/trainingrun.yaml") as f:
    run = yaml.safe_load(f)
name = run["metadata"].pop("name")
run["metadata"] = {"generateName": f"{name}-", "namespace": namespace, "labels": {"mt5db.io/started-by": "tilt"}}
run["spec"]["stackRef"] = {"name": stack}
if image:
    run["spec"]["image"] = image
print(yaml.safe_dump(run))
PY
