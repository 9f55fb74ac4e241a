"""helm/streamfleet: the chart lints, renders valid Kubernetes objects with its defaults and with a
production-like values file, and those objects do what the farm needs (pools, probes, secrets,
hooks, one reconciler). Rendering uses the real Helm SDK; no cluster is involved."""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from common.cli.main import parser
from common.config import Settings, env_name

ROOT = Path(__file__).parents[2]
CHART = ROOT / "helm" / "streamfleet"
VALUES_U30_EXTERNAL = Path(__file__).with_name("values-u30-external.yaml")
RELEASE, NAMESPACE = "sf", "streamfleet"
PREFIX = f"{RELEASE}-streamfleet"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known here.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
CRD_GROUPS = ("monitoring.coreos.com/",)
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "PriorityClass"}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job"}
SECRET_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "STREAMFLEET_ADMIN_PASSWORD",
    "STREAMFLEET_JWT_SECRET",
    "STREAMFLEET_METRICS_TOKEN",
    "STREAMFLEET_FLOWER_BASIC_AUTH",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "REDISCLI_AUTH",
}
APP_COMPONENTS = {"api", "worker", "beat", "flower"}


@dataclass(frozen=True)
class Release:
    values: dict[str, Any]
    merged: dict[str, Any]  # the chart's defaults with `values` over them
    objects: list[dict[str, Any]]

    def find(self, kind: str, name: str) -> dict[str, Any]:
        for item in self.objects:
            if item["kind"] == kind and item["metadata"]["name"] == name:
                return item
        raise AssertionError(f"no {kind} {name}")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [item for item in self.objects if item["kind"] == kind]

    def workloads(self) -> list[dict[str, Any]]:
        return [item for item in self.objects if item["kind"] in WORKLOADS]

    def component(self, item: dict[str, Any]) -> str:
        return str(item["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def render(values: dict[str, Any]) -> Release:
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        merged = chart.merge_values(values)
    objects = [
        item
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for item in yaml.safe_load_all(text)
        if item
    ]
    return Release(values, merged, objects)


def u30_external_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(VALUES_U30_EXTERNAL.read_text())
    return values


@pytest.fixture(scope="module")
def default_release() -> Release:
    return render({})


@pytest.fixture(scope="module")
def u30_release() -> Release:
    return render(u30_external_values())


@pytest.fixture(params=["default", "u30-external"])
def release(request: pytest.FixtureRequest) -> Release:
    name = "default_release" if request.param == "default" else "u30_release"
    found: Release = request.getfixturevalue(name)
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = (
        workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    )
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def enabled_pools(release: Release) -> list[dict[str, Any]]:
    pools: list[dict[str, Any]] = release.merged["workers"]["pools"]
    return [pool for pool in pools if pool.get("enabled", True)]


def test_chart_lints_without_errors_or_warnings() -> None:
    for values in ({}, u30_external_values()):
        report = helm_python.lint(CHART, values, namespace=NAMESPACE)
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_object_is_valid_for_kubernetes(release: Release) -> None:
    assert release.objects
    for item in release.objects:
        if item["apiVersion"].startswith(CRD_GROUPS):
            assert {"apiVersion", "kind", "metadata", "spec"} <= set(item)
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(item, version, strict=True)
        if item["kind"] in CLUSTER_SCOPED:  # named after the release and its namespace
            assert "namespace" not in item["metadata"]
            assert RELEASE in item["metadata"]["name"]
        else:
            assert item["metadata"]["namespace"] == NAMESPACE


def test_app_containers_run_real_subcommands(release: Release) -> None:
    seen = set()
    for workload in [*release.workloads(), *release.of_kind("Pod")]:
        if release.component(workload) in {"postgresql", "redis"}:
            continue
        for container in containers(workload):
            assert "command" not in container, "the image's entry point is `streamfleet`"
            args = parser().parse_args(container["args"])  # exits on an unknown option
            assert args.data_dir == Path("/tmp/streamfleet")
            seen.add(container["args"][0])
    assert {"api", "worker", "beat", "flower", "migrate", "check"} <= seen


def test_one_daemonset_per_enabled_pool(release: Release) -> None:
    daemonsets = {item["metadata"]["name"]: item for item in release.of_kind("DaemonSet")}
    pools = enabled_pools(release)
    assert set(daemonsets) == {f"{PREFIX}-worker-{pool['name']}" for pool in pools}
    for pool in pools:
        spec = pod_spec(daemonsets[f"{PREFIX}-worker-{pool['name']}"])
        assert spec.get("nodeSelector", {}) == pool.get("nodeSelector", {})
        assert spec.get("tolerations", []) == pool.get("tolerations", [])
        assert spec.get("affinity", {}) == pool.get("affinity", {})
        (worker,) = spec["containers"]
        assert worker["resources"] == pool.get("resources", {})


def test_defaults_run_cpu_workers_only(default_release: Release) -> None:
    assert [pool["name"] for pool in enabled_pools(default_release)] == ["cpu"]
    (cpu,) = default_release.of_kind("DaemonSet")
    node_affinity = pod_spec(cpu)["affinity"]["nodeAffinity"]
    terms = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    # CPU workers stay off the nodes labelled for the U30 pool: one worker per node.
    assert terms[0]["matchExpressions"] == [
        {"key": "streamfleet/accelerator", "operator": "DoesNotExist"}
    ]


def test_u30_pool_asks_for_its_cards_and_runs_its_own_image(u30_release: Release) -> None:
    daemonset = u30_release.find("DaemonSet", f"{PREFIX}-worker-u30")
    spec = pod_spec(daemonset)
    assert spec["nodeSelector"] == {"streamfleet/accelerator": "u30"}
    assert {"key": "amd.com/ama_u30", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    (worker,) = spec["containers"]
    assert worker["resources"]["requests"]["amd.com/ama_u30"] == 1
    assert worker["resources"]["limits"]["amd.com/ama_u30"] == 1
    assert worker["image"] == "registry.example.com/streamfleet-u30:0.1.0-vsdk3.0"
    env = env_of(worker)
    assert env["STREAMFLEET_U30_DEVICES"]["value"] == "2"
    assert env["STREAMFLEET_NODE_LABELS"]["value"] == "accelerator=u30,region=eu-west"
    assert env["STREAMFLEET_LOCAL_RTMP_URL"]["value"] == "rtmp://127.0.0.1:1935/live"
    cpu = env_of(pod_spec(u30_release.find("DaemonSet", f"{PREFIX}-worker-cpu"))["containers"][0])
    assert cpu["STREAMFLEET_CPU_OVERCOMMIT"]["value"] == "1.5"
    assert "STREAMFLEET_U30_DEVICES" not in cpu


def test_u30_pool_refuses_the_default_image() -> None:
    values = u30_external_values()
    del values["workers"]["pools"][1]["image"]
    with pytest.raises(helm_python.HelmRenderError, match=r"image\.repository"):
        render(values)


def test_workers_are_nodes_that_drain_and_answer_health_checks(release: Release) -> None:
    port = release.merged["workers"]["httpPort"]
    for daemonset in release.of_kind("DaemonSet"):
        spec = pod_spec(daemonset)
        assert spec["hostNetwork"] is True
        assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert spec["terminationGracePeriodSeconds"] >= 60
        (worker,) = spec["containers"]
        servers = release.merged["workers"]["servers"]
        assert worker["ports"] == [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            {"name": "rtmp", "containerPort": servers["rtmpPort"], "protocol": "TCP"},
            {"name": "rtsp", "containerPort": servers["rtspPort"], "protocol": "TCP"},
        ]
        env = env_of(worker)
        assert env["STREAMFLEET_WORKER_HTTP_PORT"]["value"] == str(port)
        # The node's media servers: its own RTMP and RTSP servers, the modules it may run.
        assert env["STREAMFLEET_RTMP_SERVER_PORT"]["value"] == str(servers["rtmpPort"])
        assert env["STREAMFLEET_RTSP_SERVER_PORT"]["value"] == str(servers["rtspPort"])
        assert env["STREAMFLEET_SERVER_KINDS"]["value"] == servers["kinds"]
        assert env["STREAMFLEET_NODE_NAME"]["valueFrom"] == {
            "fieldRef": {"fieldPath": "spec.nodeName"}
        }
        assert env["STREAMFLEET_NODE_ADDRESS"]["valueFrom"] == {
            "fieldRef": {"fieldPath": "status.hostIP"}
        }
        assert env["STREAMFLEET_MEDIA_DIR"]["value"] == "/var/lib/streamfleet/media"
        # Liveness is the process's own (a Redis outage must not restart the fleet); readiness
        # is the lease's.
        for probe in ("startupProbe", "livenessProbe"):
            assert worker[probe]["httpGet"] == {"path": "/livez", "port": "http"}, probe
        assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert "celery" not in json.dumps(daemonset), "probe the lease, not celery inspect"


def test_the_reconciler_has_probes_and_metrics(release: Release) -> None:
    beat = release.find("Deployment", f"{PREFIX}-beat")
    (container,) = pod_spec(beat)["containers"]
    port = release.merged["beat"]["httpPort"]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert env_of(container)["STREAMFLEET_BEAT_HTTP_PORT"]["value"] == str(port)
    assert "STREAMFLEET_METRICS_TOKEN" in env_of(container)
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_api_probes_and_replicas(release: Release) -> None:
    api = release.find("Deployment", f"{PREFIX}-api")
    spec = pod_spec(api)
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert spec["terminationGracePeriodSeconds"] == 30
    if release.merged["api"]["autoscaling"]["enabled"]:
        assert "replicas" not in api["spec"], "the HorizontalPodAutoscaler owns replicas"
        (hpa,) = release.of_kind("HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
    else:
        assert api["spec"]["replicas"] == release.merged["api"]["replicas"]
        assert release.of_kind("HorizontalPodAutoscaler") == []


def test_api_has_a_disruption_budget(release: Release) -> None:
    (budget,) = release.of_kind("PodDisruptionBudget")
    api = release.find("Deployment", f"{PREFIX}-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1


def test_ingress_routes_to_the_api(u30_release: Release, default_release: Release) -> None:
    assert default_release.of_kind("Ingress") == []
    (ingress,) = u30_release.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "streamfleet.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{PREFIX}-api", "port": {"name": "http"}}


def test_reconciler_is_exactly_one(release: Release) -> None:
    beat = release.find("Deployment", f"{PREFIX}-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = pod_spec(beat)["containers"]
    assert container["args"][0] == "beat"


def test_migrations_run_as_a_hook(release: Release) -> None:
    job = release.find("Job", f"{PREFIX}-migrate")
    annotations = job["metadata"]["annotations"]
    assert "pre-upgrade" in annotations["helm.sh/hook"].split(",")
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert int(annotations["helm.sh/hook-weight"]) == 0
    assert pod_spec(job)["restartPolicy"] == "Never"
    (container,) = pod_spec(job)["containers"]
    assert container["args"][0] == "migrate"
    assert set(env_of(container)) == {"DATABASE_URL"}
    assert "envFrom" not in container, "a pre-install hook cannot read the release's ConfigMap"


def test_an_external_database_is_migrated_before_install(u30_release: Release) -> None:
    job = u30_release.find("Job", f"{PREFIX}-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = pod_spec(job)["containers"]
    ref = env_of(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "streamfleet-database", "key": "url"}, "a Secret that exists already"
    api = u30_release.find("Deployment", f"{PREFIX}-api")
    assert "initContainers" not in pod_spec(api)


def test_an_external_database_url_reaches_the_hook_through_a_hook_secret() -> None:
    url = "postgresql://streamfleet:db-password@db.example.com:5432/streamfleet"
    redis_url = "redis://:redis-password@redis.example.com:6379/0"
    release = render(
        {
            "postgresql": {"bundled": {"enabled": False}, "external": {"url": url}},
            "redis": {"bundled": {"enabled": False}, "external": {"url": redis_url}},
        }
    )
    others = json.dumps([item for item in release.objects if item["kind"] != "Secret"])
    assert "db-password" not in others
    assert "redis-password" not in others
    job = release.find("Job", f"{PREFIX}-migrate")
    hook_secret = release.find("Secret", f"{PREFIX}-migrate")
    job_hook, secret_hook = job["metadata"]["annotations"], hook_secret["metadata"]["annotations"]
    assert job_hook["helm.sh/hook"] == secret_hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret_hook["helm.sh/hook-weight"]) < int(job_hook["helm.sh/hook-weight"])
    assert "hook-succeeded" in secret_hook["helm.sh/hook-delete-policy"]
    assert base64.b64decode(hook_secret["data"]["DATABASE_URL"]).decode() == url
    (container,) = pod_spec(job)["containers"]
    ref = env_of(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{PREFIX}-migrate", "key": "DATABASE_URL"}
    for item in (job, hook_secret):
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(item, version, strict=True)


def test_the_bundled_database_is_migrated_by_the_api_at_install(
    default_release: Release,
) -> None:
    # The bundled PostgreSQL exists only after install: a post-install hook would wait for an
    # API that needs the schema (`helm install --wait`, Argo CD), so the API migrates it first.
    job = default_release.find("Job", f"{PREFIX}-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    api = default_release.find("Deployment", f"{PREFIX}-api")
    (init,) = pod_spec(api)["initContainers"]
    assert init["args"] == ["migrate", "--data-dir", "/tmp/streamfleet"]
    # Its password was generated by the hook Job, into the generated Secret.
    ref = env_of(init)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{PREFIX}-generated", "key": "DATABASE_URL"}


def test_secrets_are_never_inlined(release: Release) -> None:
    for workload in release.workloads():
        for container in containers(workload):
            for name, entry in env_of(container).items():
                if name in SECRET_ENV:
                    assert "value" not in entry, f"{workload['metadata']['name']}: {name}"
                    assert entry["valueFrom"]["secretKeyRef"]["name"], name
                    assert entry["valueFrom"]["secretKeyRef"]["key"], name
    secrets = [
        base64.b64decode(value).decode()
        for secret in release.of_kind("Secret")
        for value in secret.get("data", {}).values()
    ]
    others = json.dumps([item for item in release.objects if item["kind"] != "Secret"])
    for value in secrets:
        assert value not in others, "a secret value appears outside its Secret"


def test_each_component_reads_what_it_needs_from_secrets(release: Release) -> None:
    connections = {"DATABASE_URL", "REDIS_URL"}
    needs = {
        "api": connections
        | {"STREAMFLEET_ADMIN_PASSWORD", "STREAMFLEET_JWT_SECRET", "STREAMFLEET_METRICS_TOKEN"},
        "worker": connections | {"STREAMFLEET_METRICS_TOKEN"},
        "beat": connections,
        # Its basic auth: STREAMFLEET_FLOWER_BASIC_AUTH when given, else the administrator's.
        "flower": {"REDIS_URL", "STREAMFLEET_ADMIN_PASSWORD"},
        "migrate": {"DATABASE_URL"},
    }
    rendered = {secret["metadata"]["name"]: secret for secret in release.of_kind("Secret")}
    generated = generated_keys(release)
    existing = {
        release.merged["secrets"]["existingSecret"],
        release.merged["postgresql"]["external"]["existingSecret"],
        release.merged["redis"]["external"]["existingSecret"],
    } - {""}
    for workload in release.workloads():
        component = release.component(workload)
        for container in containers(workload):
            env = env_of(container)
            if container["name"] != "migrate":
                assert needs.get(component, set()) <= set(env), component
            for name in SECRET_ENV & set(env):
                ref = env[name]["valueFrom"]["secretKeyRef"]
                if ref["name"] in rendered:
                    data = rendered[ref["name"]].get("data", {})
                    assert ref["key"] in data or ref.get("optional"), f"{component}: {name}"
                elif ref["name"] == f"{PREFIX}-generated":
                    assert ref["key"] in generated, f"{component}: {name}"
                else:
                    assert ref["name"] in existing, f"{component}: {name} from {ref['name']}"


def generated_keys(release: Release) -> set[str]:
    """The keys the hook Job makes (its --key and --derived arguments)."""
    jobs = [j for j in release.of_kind("Job") if j["metadata"]["name"] == f"{PREFIX}-secrets"]
    if not jobs:
        return set()
    (container,) = containers(jobs[0])
    return {
        arg.split("=", 2)[1]
        for arg in container["args"]
        if arg.startswith(("--key=", "--derived="))
    }


def test_secrets_render_identically_every_time() -> None:
    """Argo CD and Flux render with `helm template`: no value may change between renders, or
    every sync would roll every pod and change the passwords under the bundled database."""
    first, second = render({}), render({})
    assert first.objects == second.objects
    job = first.find("Job", f"{PREFIX}-secrets")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert generated_keys(first) == {
        "STREAMFLEET_ADMIN_PASSWORD", "STREAMFLEET_JWT_SECRET", "STREAMFLEET_METRICS_TOKEN",
        "POSTGRES_PASSWORD", "DATABASE_URL", "REDIS_PASSWORD", "REDIS_URL",
    }  # fmt: skip
    (role,) = [r for r in first.of_kind("Role") if r["metadata"]["name"] == f"{PREFIX}-secrets"]
    assert role["rules"][0]["resourceNames"] == [f"{PREFIX}-generated"]
    assert set(role["rules"][0]["verbs"]) == {"get", "patch"}
    assert pod_spec(job)["serviceAccountName"] == f"{PREFIX}-secrets"
    # Every secret given in the values: nothing to generate, no Job.
    given = render(
        {
            "secrets": {"adminPassword": "a-long-password", "jwtSecret": "j" * 40,
                        "metricsToken": "m" * 32},
            "postgresql": {"bundled": {"password": "pg-password"}},
            "redis": {"bundled": {"password": "redis-password"}},
        }
    )  # fmt: skip
    assert generated_keys(given) == set()
    assert [r for r in given.of_kind("Role") if r["metadata"]["name"] == f"{PREFIX}-secrets"] == []


def test_settings_come_from_a_config_map(u30_release: Release) -> None:
    config_map = u30_release.find("ConfigMap", PREFIX)
    assert config_map["data"] == {
        "STREAMFLEET_PLACEMENT_POLICY": "pack",
        "STREAMFLEET_LOG_LEVEL": "INFO",
    }
    for workload in u30_release.workloads():
        if u30_release.component(workload) in APP_COMPONENTS:
            (container,) = pod_spec(workload)["containers"]
            assert container["envFrom"] == [{"configMapRef": {"name": PREFIX}}]


def test_pods_roll_when_settings_or_secrets_change(default_release: Release) -> None:
    def checksums(release: Release) -> dict[str, dict[str, str]]:
        found = {}
        for workload in release.workloads():
            if release.component(workload) in APP_COMPONENTS:
                annotations = workload["spec"]["template"]["metadata"]["annotations"]
                found[workload["metadata"]["name"]] = {
                    key: annotations[key] for key in ("checksum/config", "checksum/secret")
                }
        return found

    before = checksums(default_release)
    assert {name.removeprefix(f"{PREFIX}-") for name in before} == {
        "api",
        "worker-cpu",
        "beat",
        "flower",
    }
    after = checksums(render({"config": {"STREAMFLEET_PLACEMENT_POLICY": "pack"}}))
    for name, sums in before.items():
        assert after[name]["checksum/config"] != sums["checksum/config"], name
    fixed: dict[str, dict[str, Any]] = {
        "secrets": {
            "adminPassword": "a-long-enough-password",
            "jwtSecret": "j" * 40,
            "metricsToken": "m" * 32,
        }
    }
    fixed |= {"postgresql": {"bundled": {"password": "pg-password"}}}
    fixed |= {"redis": {"bundled": {"password": "redis-password"}}}
    first, second = checksums(render(fixed)), checksums(render(fixed))
    assert first == second, "given secrets give stable checksums"
    fixed["secrets"]["jwtSecret"] = "k" * 40
    changed = checksums(render(fixed))
    rolled = {n for n in first if changed[n]["checksum/secret"] != first[n]["checksum/secret"]}
    assert rolled == {f"{PREFIX}-api"}, "only the API reads the token secret"
    fixed["redis"]["bundled"]["password"] = "another-redis-password"
    changed = checksums(render(fixed))
    assert all(changed[n]["checksum/secret"] != first[n]["checksum/secret"] for n in first)


def test_bundled_databases_are_for_trials_only(
    default_release: Release, u30_release: Release
) -> None:
    stateful = {item["metadata"]["name"] for item in default_release.of_kind("StatefulSet")}
    assert stateful == {f"{PREFIX}-postgresql", f"{PREFIX}-redis"}
    postgres = pod_spec(default_release.find("StatefulSet", f"{PREFIX}-postgresql"))
    assert postgres["containers"][0]["image"] == "postgres:16"
    redis = pod_spec(default_release.find("StatefulSet", f"{PREFIX}-redis"))
    assert redis["containers"][0]["image"] == "redis:7"
    assert u30_release.of_kind("StatefulSet") == []
    assert u30_release.of_kind("Secret") == [], "everything comes from existing Secrets"


def test_one_database_source_at_a_time() -> None:
    with pytest.raises(helm_python.HelmRenderError, match="exactly one"):
        render({"postgresql": {"external": {"url": "postgresql://db.example.com/streamfleet"}}})
    with pytest.raises(helm_python.HelmRenderError, match="exactly one"):
        render({"redis": {"bundled": {"enabled": False}}})


def test_services_reach_their_pods(release: Release) -> None:
    pods = [
        (workload["spec"]["template"]["metadata"]["labels"], containers(workload))
        for workload in release.workloads()
    ]
    for service in release.of_kind("Service"):
        selector = service["spec"]["selector"]
        matched = [c for labels, cs in pods if selector.items() <= labels.items() for c in cs]
        assert matched, service["metadata"]["name"]
        port_names = {port["name"] for c in matched for port in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, service["metadata"]["name"]


def test_service_monitors_scrape_the_api_the_workers_and_the_reconciler(
    default_release: Release, u30_release: Release
) -> None:
    assert default_release.of_kind("ServiceMonitor") == []
    monitors = u30_release.of_kind("ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {
        f"{PREFIX}-api",
        f"{PREFIX}-worker",
        f"{PREFIX}-beat",
    }
    services = u30_release.of_kind("Service")
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        selector = monitor["spec"]["selector"]["matchLabels"]
        (service,) = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_schema_refuses_unknown_keys() -> None:
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema({})
        chart.validate_schema(u30_external_values())
        for wrong in (
            {"replicas": 3},
            {"api": {"replica": 3}},
            {"workers": {"pools": [{"name": "cpu", "nodeSelectors": {}}]}},
            {"api": {"resources": {"request": {"cpu": "1"}}}},
            {"securityContext": {"readOnlyRootFileSystem": True}},
            {"config": {"STREAMFLEET_JWT_SECRET": "inline secrets are refused"}},
            {"config": {"DATABASE_URL": "postgresql://db/streamfleet"}},
            {"secrets": {"adminPassword": "short"}},
        ):
            with pytest.raises(helm_python.HelmValuesError):
                chart.validate_schema(wrong)


def walk(schema: dict[str, Any], path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    """Every property of the schema (array items and map values included), with its path."""
    found = []
    for key, sub in schema.get("properties", {}).items():
        found.append((f"{path}.{key}", sub))
        found += walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        found += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += walk(schema["additionalProperties"], f"{path}{{}}")
    return found


def test_schema_describes_every_key_with_a_default() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    nodes = [("$", schema), *walk(schema)]
    for path, node in walk(schema):
        assert node.get("description"), f"{path} has no description"
        if not path.startswith("$.config."):  # unset settings take the application's default
            assert "default" in node, f"{path} has no default"
    for path, node in nodes:
        if "properties" in node:
            assert node["additionalProperties"] is False, f"{path} accepts unknown keys"
        elif node.get("type") == "object":
            # A map (typed values) or a Kubernetes structure the API server validates.
            assert "additionalProperties" in node, f"{path} must say what it accepts"
            if node["additionalProperties"] is True:
                assert "Kubernetes" in node["description"], path


def test_schema_defaults_are_the_values_file() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def compare(node: dict[str, Any], value: Any, path: str) -> None:
        assert node["default"] == value, path
        for key, sub in node.get("properties", {}).items():
            if isinstance(value, dict) and key in value:
                compare(sub, value[key], f"{path}.{key}")

    for key, sub in schema["properties"].items():
        assert key in values, f"{key} is in the schema but not in values.yaml"
        compare(sub, values[key], key)
    assert set(values) == set(schema["properties"])


def test_config_accepts_the_settings_the_chart_does_not_manage() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    accepted = set(schema["properties"]["config"]["properties"])
    settings = {env_name(field) for field in Settings.model_fields}
    chart_managed = {
        f"STREAMFLEET_{name}"
        for name in (
            "NODE_NAME",
            "NODE_ADDRESS",
            "MEDIA_DIR",
            "WORKER_HTTP_PORT",
            "CPU_MILLICORES",
            "CPU_OVERCOMMIT",
            "U30_DEVICES",
            "NODE_LABELS",
            "PLAYBACK_BASE_URL",  # per node too: a pool's `env` sets it, if a CDN fronts it
            "RTMP_SERVER_PORT",  # workers.servers
            "RTSP_SERVER_PORT",
            "SERVER_KINDS",
            "BEAT_HTTP_PORT",  # beat.httpPort
            "DRAIN_ON_CORDON",  # workers.drainOnCordon
        )
    }
    assert chart_managed <= settings
    assert accepted == settings - SECRET_ENV - chart_managed
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema({"config": {"STREAMFLEET_RETRY_BUDGET": 3, "FFMPEG_BINARY": "ff"}})
        for wrong in (
            {"STREAMFLEET_PLACMENT_POLICY": "pack"},
            {"STREAMFLEET_PLACEMENT_POLICY": "random"},
            {"STREAMFLEET_NODE_NAME": "one-name-for-every-node"},
            {"STREAMFLEET_RETRY_BUDGET": "five"},
        ):
            with pytest.raises(helm_python.HelmValuesError):
                chart.validate_schema({"config": wrong})


def test_numbers_reach_the_environment_as_written() -> None:
    release = render(
        {
            "config": {"STREAMFLEET_JWT_TTL_S": 2592000, "STREAMFLEET_LEASE_TTL_S": 7.5},
            "workers": {"pools": [{"name": "big", "cpuMillicores": 64000, "cpuOvercommit": 2}]},
        }
    )
    data = release.find("ConfigMap", PREFIX)["data"]
    assert data == {"STREAMFLEET_JWT_TTL_S": "2592000", "STREAMFLEET_LEASE_TTL_S": "7.5"}
    (worker,) = pod_spec(release.find("DaemonSet", f"{PREFIX}-worker-big"))["containers"]
    env = env_of(worker)
    assert env["STREAMFLEET_CPU_MILLICORES"]["value"] == "64000"
    assert env["STREAMFLEET_CPU_OVERCOMMIT"]["value"] == "2"


def test_a_pool_env_replaces_what_the_chart_sets() -> None:
    public = {"name": "STREAMFLEET_NODE_ADDRESS", "value": "203.0.113.7"}
    release = render({"workers": {"pools": [{"name": "edge", "env": [public]}]}})
    (worker,) = pod_spec(release.find("DaemonSet", f"{PREFIX}-worker-edge"))["containers"]
    names = [entry["name"] for entry in worker["env"]]
    assert len(names) == len(set(names)), "duplicate env names break server-side apply"
    assert env_of(worker)["STREAMFLEET_NODE_ADDRESS"] == public
    assert env_of(worker)["STREAMFLEET_NODE_NAME"]["valueFrom"]["fieldRef"]


def test_the_chart_works_as_a_dependency_with_global_values(tmp_path: Path) -> None:
    """A platform chart that bundles streamfleet: Helm hands every subchart the parent's
    `global` values, which the strict schema must accept."""
    parent = tmp_path / "platform"
    shutil.copytree(CHART, parent / "charts" / "streamfleet")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (parent / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "platform",
                "version": "1.0.0",
                "dependencies": [
                    {"name": "streamfleet", "version": chart["version"], "repository": ""}
                ],
            }
        )
    )
    values = {
        "global": {"imageRegistry": "registry.example.com", "storageClass": "fast"},
        "streamfleet": {"api": {"replicas": 3}},
    }
    with helm_python.Chart.load(parent) as platform:
        manifests = platform.render(values, name=RELEASE, namespace=NAMESPACE)
    objects = [
        item for path, text in manifests.items() if path.endswith(".yaml")
        for item in yaml.safe_load_all(text) if item
    ]  # fmt: skip
    (api,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-api")
    ]
    assert api["spec"]["replicas"] == 3


def test_workers_follow_their_node_with_only_the_rbac_it_needs(default_release: Release) -> None:
    """Drain on cordon: each worker reads its own Node, and may do nothing else with the API."""
    account = f"{PREFIX}-worker"
    assert default_release.find("ServiceAccount", account)["automountServiceAccountToken"] is False
    role = default_release.find("ClusterRole", f"{account}-{NAMESPACE}")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    binding = default_release.find("ClusterRoleBinding", f"{account}-{NAMESPACE}")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    for workload in default_release.workloads():
        spec = pod_spec(workload)
        if workload["kind"] == "DaemonSet":
            assert spec["serviceAccountName"] == account
            assert spec["automountServiceAccountToken"] is True
            (worker,) = spec["containers"]
            setting = env_name("drain_on_cordon")
            assert env_of(worker)[setting]["value"] == "true"
        elif default_release.component(workload) != "secrets":  # the hook Job has its own
            assert spec["automountServiceAccountToken"] is False, workload["metadata"]["name"]

    off = render({"workers": {"drainOnCordon": {"enabled": False}}})
    assert not off.of_kind("ClusterRole") and not off.of_kind("ClusterRoleBinding")
    (daemonset,) = off.of_kind("DaemonSet")
    assert pod_spec(daemonset)["automountServiceAccountToken"] is False
    assert env_of(pod_spec(daemonset)["containers"][0])["STREAMFLEET_DRAIN_ON_CORDON"]["value"] == (
        "false"
    )
    own = render({"workers": {"drainOnCordon": {"createRbac": False, "serviceAccountName": "x"}}})
    assert not own.of_kind("ClusterRole")
    (daemonset,) = own.of_kind("DaemonSet")
    assert pod_spec(daemonset)["serviceAccountName"] == "x"
    with pytest.raises(helm_python.HelmError, match="serviceAccountName"):
        render({"workers": {"drainOnCordon": {"createRbac": False}}})


def test_workers_run_at_a_priority_batch_pods_do_not_preempt(default_release: Release) -> None:
    (priority,) = default_release.of_kind("PriorityClass")
    assert priority["value"] == 1000000 and priority["globalDefault"] is False
    (daemonset,) = default_release.of_kind("DaemonSet")
    assert pod_spec(daemonset)["priorityClassName"] == priority["metadata"]["name"]
    for workload in default_release.workloads():
        if workload["kind"] != "DaemonSet":
            assert "priorityClassName" not in pod_spec(workload)
    given = render({"workers": {"pools": [{"name": "cpu", "priorityClassName": "live"}]}})
    assert pod_spec(given.of_kind("DaemonSet")[0])["priorityClassName"] == "live"
    none = render({"workers": {"priorityClass": {"create": False}}})
    assert not none.of_kind("PriorityClass")
    assert "priorityClassName" not in pod_spec(none.of_kind("DaemonSet")[0])


def test_api_replicas_spread_over_nodes(default_release: Release) -> None:
    api = pod_spec(default_release.find("Deployment", f"{PREFIX}-api"))
    selector = default_release.find("Deployment", f"{PREFIX}-api")["spec"]["selector"]
    assert api["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector["matchLabels"]},
        }
    ]
    zone = {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"team": "video"}},
    }
    given = render({"api": {"topologySpreadConstraints": [zone]}})
    assert pod_spec(given.find("Deployment", f"{PREFIX}-api"))["topologySpreadConstraints"] == [
        zone
    ]


def test_extension_points_reach_every_component() -> None:
    def extras(who: str) -> dict[str, Any]:
        return {
            "podLabels": {"team": who},
            "priorityClassName": f"{who}-priority",
            "extraEnvFrom": [{"secretRef": {"name": f"{who}-env"}}],
            "extraVolumes": [{"name": f"{who}-vol", "emptyDir": {}}],
            "extraVolumeMounts": [{"name": f"{who}-vol", "mountPath": "/extra"}],
            "extraContainers": [{"name": f"{who}-sidecar", "image": "busybox"}],
            "extraInitContainers": [{"name": f"{who}-init", "image": "busybox"}],
        }

    migrations = extras("migrate")
    del migrations["extraContainers"]  # a Job's sidecar would keep it from ending
    pool = extras("worker")
    del pool["podLabels"]  # workers.podLabels: every pool's
    release = render(
        {
            "api": extras("api"),
            "beat": extras("beat"),
            "flower": extras("flower"),
            "migrations": migrations,
            "workers": {"podLabels": {"team": "worker"}, "pools": [{"name": "cpu", **pool}]},
        }
    )
    assert set(release.values) <= set(release.merged)
    for workload in release.workloads():
        who = release.component(workload)
        if who in {"postgresql", "redis", "secrets"}:
            continue
        template = workload["spec"]["template"]
        spec = template["spec"]
        assert template["metadata"]["labels"]["team"] == who
        assert spec["priorityClassName"] == f"{who}-priority"
        assert {"name": f"{who}-vol", "emptyDir": {}} in spec["volumes"]
        names = [c["name"] for c in spec["containers"]]
        init = [c["name"] for c in spec.get("initContainers", [])]
        assert init[-1] == f"{who}-init", init  # after the chart's own
        main = next(
            c for c in containers(workload) if c["name"] == {"migrate": "migrate"}.get(who, who)
        )
        assert {"secretRef": {"name": f"{who}-env"}} in main["envFrom"]
        assert {"name": f"{who}-vol", "mountPath": "/extra"} in main["volumeMounts"]
        if who == "migrate":
            assert names == ["migrate"]
        else:
            assert names == [who, f"{who}-sidecar"]
    for version in KUBERNETES_VERSIONS:
        for item in release.objects:
            if not item["apiVersion"].startswith(CRD_GROUPS):
                kubernetes_validate.validate(item, version, strict=True)


def test_network_policies_admit_only_what_each_port_serves() -> None:
    with pytest.raises(helm_python.HelmError, match="nodeCIDRs"):
        render({"networkPolicy": {"enabled": True}})  # host-network workers, bundled databases
    prometheus = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    release = render(
        {
            "networkPolicy": {
                "enabled": True,
                "nodeCIDRs": ["10.0.0.0/16"],
                "metricsFrom": [prometheus],
            }
        }
    )
    policies = {
        p["metadata"]["name"].removeprefix(f"{PREFIX}-"): p
        for p in release.of_kind("NetworkPolicy")
    }
    assert set(policies) == {"api", "beat", "flower", "postgresql", "redis"}
    for name, policy in policies.items():
        selected = policy["spec"]["podSelector"]["matchLabels"]
        assert selected["app.kubernetes.io/component"] == name
        (rule,) = policy["spec"]["ingress"]
        (port,) = rule["ports"]
        served = {
            "api": 8080, "beat": release.merged["beat"]["httpPort"], "flower": 5555,
            "postgresql": 5432, "redis": 6379,
        }[name]  # fmt: skip
        assert port == {"port": served, "protocol": "TCP"}
        if name in {"api", "flower"}:
            assert "from" not in rule  # everyone: the API is the farm's door
        elif name == "beat":
            assert rule["from"] == [prometheus]
        else:
            assert rule["from"] == [
                {
                    "podSelector": {
                        "matchLabels": {
                            "app.kubernetes.io/name": "streamfleet",
                            "app.kubernetes.io/instance": RELEASE,
                        }
                    }
                },
                {"ipBlock": {"cidr": "10.0.0.0/16"}},
            ]
    # Every pod that reaches the databases carries the labels the rule admits.
    for workload in release.workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE


def test_helm_test_checks_the_farm_answers(default_release: Release) -> None:
    (pod,) = default_release.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (check,) = pod["spec"]["containers"]
    args = parser().parse_args(check["args"])
    assert args.api == f"http://{PREFIX}-api.{NAMESPACE}.svc:8080"
    assert args.beat == f"http://{PREFIX}-beat.{NAMESPACE}.svc:9120"
    service_ports = {
        s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]}
        for s in default_release.of_kind("Service")
    }
    assert 8080 in service_ports[f"{PREFIX}-api"] and 9120 in service_ports[f"{PREFIX}-beat"]
    assert "STREAMFLEET_ADMIN_PASSWORD" in env_of(check)


def test_the_chart_readme_is_generated_from_the_schema() -> None:
    """helm/streamfleet/README.md lists every key of values.schema.json as it stands."""
    spec = importlib.util.spec_from_file_location("chart_readme", ROOT / "helm" / "readme.py")
    assert spec is not None and spec.loader is not None
    readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(readme)
    text = (CHART / "README.md").read_text()
    assert text == readme.render(), "run: python helm/readme.py"
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path, _ in walk(schema):
        if "{}" in path:  # inside a map's values: described by the map's row
            continue
        assert f"| `{path.removeprefix('$.')}` |" in text, path


def test_alerts_and_dashboard_ship_in_the_chart() -> None:
    files = CHART / "files"
    release = render(
        {
            "metrics": {
                "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus"}},
                "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Video"}},
            }
        }
    )
    (rule,) = release.of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    assert rule["spec"] == yaml.safe_load((files / "prometheus-rules.yaml").read_text())
    dashboard = release.find("ConfigMap", f"{PREFIX}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Video"}
    assert json.loads(dashboard["data"]["streamfleet.json"]) == json.loads(
        (files / "grafana-dashboard.json").read_text()
    )
    linked = render(
        {"metrics": {"prometheusRule": {"enabled": True, "runbookUrl": "https://r/sf"}}}
    )
    for group in linked.of_kind("PrometheusRule")[0]["spec"]["groups"]:
        for alert in group["rules"]:
            assert alert["annotations"]["runbook_url"] == f"https://r/sf#{alert['alert'].lower()}"
    default = render({})
    assert not default.of_kind("PrometheusRule")
    assert f"{PREFIX}-dashboard" not in {
        c["metadata"]["name"] for c in default.of_kind("ConfigMap")
    }
