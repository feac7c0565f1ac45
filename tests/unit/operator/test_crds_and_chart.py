"""crds/ is the single source of truth: the chart's crds/ is a link to it, every CRD is complete.

That `helm package` puts exactly these files into the chart archive is checked with the real
helm in tests/integration/operator/test_chart_render.py.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"
CHART_CRDS = REPO / "charts" / "mt5db-operator" / "crds"


def test_chart_crds_are_identical_to_crds_dir() -> None:
    ours = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in CHART_CRDS.glob("*.yaml")}
    assert ours and ours == chart, "charts/mt5db-operator/crds must be a symlink to ../../crds"


def test_chart_crds_is_a_link_to_the_one_copy() -> None:
    assert CHART_CRDS.is_symlink() and CHART_CRDS.readlink() == Path("../../crds")
    assert CHART_CRDS.resolve() == CRDS.resolve()


def test_every_crd_has_status_subresource_conditions_and_printer_columns() -> None:
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        assert crd["spec"]["group"] == "mt5db.io" and crd["spec"]["scope"] == "Namespaced"
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        assert {"phase", "message", "observedGeneration", "conditions"} <= status.keys()
        cond = status["conditions"]["items"]["properties"]
        assert {
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
            "observedGeneration",
        } <= cond.keys()
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        assert columns[-1] == "Age"
