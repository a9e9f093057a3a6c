"""The deployment artifacts of generated-example/, checked by the validators the AWS community
uses (cfn-lint, checkov, hadolint, parliament, botocore's RegisterTaskDefinition shape) and by
assertions for what those tools do not check (gRPC target group, listener rule, Cloud Map,
least-privilege IAM)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "generated-example"
DEPLOY = PROJECT / "deploy"
VENV = ROOT / ".venv" / "bin"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# What deployment substitutes for the placeholders of the JSON artifacts.
SUBSTITUTIONS = {"${AWS_PARTITION}": "aws", "${AWS_REGION}": "eu-central-1", "${AWS_ACCOUNT_ID}": "123456789012",
                 "${IMAGE}": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/task-svc:abc123"}


def substituted(path):
    text = path.read_text()
    for placeholder, value in SUBSTITUTIONS.items():
        text = text.replace(placeholder, value)
    return text


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags as plain tagged values."""


def construct(loader, node, tag):
    if isinstance(node, yaml.SequenceNode):
        return {tag: loader.construct_sequence(node, deep=True)}
    return {tag: loader.construct_scalar(node)}


for tag in ["!Ref", "!GetAtt", "!Sub", "!If", "!Not", "!Equals", "!Join", "!Select", "!Split"]:
    CfnLoader.add_constructor(tag, lambda loader, node, tag=tag: construct(loader, node, tag))


def load_template(project=PROJECT):
    return yaml.load((project / "deploy" / "cloudformation.yaml").read_text(), Loader=CfnLoader)


@pytest.fixture(scope="module")
def template():
    return load_template()["Resources"]


def run(*command, **kwargs):
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=300, **kwargs)


# Every golden project's artifacts pass the validators, not only the example's.
PROJECTS = [PROJECT, ROOT / "codegen" / "tests" / "golden" / "projects"]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_cfn_lint_finds_nothing(project):
    # One region per partition: aws, aws-cn, aws-us-gov.
    result = run(VENV / "cfn-lint", "--regions", "us-east-1", "cn-north-1", "us-gov-west-1", "--",
                 project / "deploy" / "cloudformation.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_no_artifact_names_a_partition(project):
    """ARNs say `${AWS_PARTITION}` (JSON, filled by svcgen deploy from the caller's ARN) or
    `${AWS::Partition}` (CloudFormation): `arn:aws:` would be refused in China and GovCloud."""
    files = [project / "deploy" / "cloudformation.yaml", *sorted((project / "deploy").rglob("*.json"))]
    for path in files:
        assert "arn:aws:" not in path.read_text(), path
    assert "arn:${AWS_PARTITION}:iam::" in (project / "deploy" / "task-definition.json").read_text()


def test_a_first_create_stack_needs_no_image(template):
    """The stack creates the ECR repository its service pulls from: without an image tag (the
    default) the service runs no task, so the first create-stack completes; a rollback of that
    creation removes the tables, so a retry does not collide with them."""
    parameters = load_template()["Parameters"]
    assert parameters["ImageTag"]["Default"] == ""
    assert template["Service"]["Properties"]["DesiredCount"] == {"!If": ["HasImage", 2, 0]}
    image = template["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Image"]
    assert image["!If"][0] == "HasImage"
    assert template["TableTasks"]["DeletionPolicy"] == "RetainExceptOnCreate"
    assert template["TableTasks"]["UpdateReplacePolicy"] == "Retain"


def test_cost_defaults_expire_old_images_and_leave_container_insights_off(template):
    policy = json.loads(template["Repository"]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
    [rule] = policy["rules"]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20}
    assert rule["action"] == {"type": "expire"}
    assert template["Cluster"]["Properties"]["ClusterSettings"] == [{"Name": "containerInsights", "Value": "disabled"}]


def test_checkov_passes_template_and_dockerfile():
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    result = run(CHECKOV, "--quiet", "--compact", "-f", DEPLOY / "cloudformation.yaml", "-f", PROJECT / "Dockerfile", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0" in result.stdout


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_hadolint_is_clean(project):
    result = run(VENV / "hadolint", "--no-color", project / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
@pytest.mark.parametrize("policy", ["task-role-policy.json", "execution-role-policy.json"])
def test_parliament_is_clean(project, policy):
    # The trust policy is a resource policy (no Resource element), which parliament does not
    # lint; test_execution_role_is_scoped_to_this_image_and_log_group checks it.
    result = run(VENV / "parliament", input=substituted(project / "deploy" / "iam" / policy))
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_the_readme_policy_for_deploying_names_real_actions():
    """parliament knows every IAM action: a misspelt one in the README's policy for the identity
    running `svcgen deploy` is reported (its `Resource: *` is left to the reader to narrow)."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- deploy-policy -->\n```json\n") + len("<!-- deploy-policy -->\n```json\n")
    policy = readme[start:readme.index("```", start)]
    result = run(VENV / "parliament", input=policy)
    findings = [line for line in result.stdout.splitlines() if line.strip()]
    assert findings, "parliament reads the policy (it notes each Resource: *)"
    other = [f for f in findings if "Unnecessary use of Resource *" not in f]
    assert other == [], other


def test_task_definition_is_valid_register_task_definition_input():
    import botocore.session
    from botocore.validate import validate_parameters

    ecs = botocore.session.get_session().get_service_model("ecs")
    shape = ecs.operation_model("RegisterTaskDefinition").input_shape
    definition = json.loads(substituted(DEPLOY / "task-definition.json"))
    validate_parameters(definition, shape)  # raises ParamValidationError listing every problem

    assert (definition["family"], definition["cpu"], definition["memory"]) == ("task-svc", "512", "1024")
    assert definition["networkMode"] == "awsvpc" and definition["requiresCompatibilities"] == ["FARGATE"]
    container = definition["containerDefinitions"][0]
    assert container["portMappings"][0]["containerPort"] == 50051
    assert container["portMappings"][0]["protocol"] == "tcp"
    assert container["healthCheck"] == {
        "command": ["CMD", "/task-svc", "health-probe", "-addr=127.0.0.1:50051"],
        "interval": 15, "timeout": 5, "retries": 3, "startPeriod": 30,
    }
    assert container["user"] != "0" and not container["user"].startswith("root")
    assert container["readonlyRootFilesystem"] is True
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["TABLE_NAME"] == "tasks" and env["AWS_REGION"] == "eu-central-1"
    assert definition["taskRoleArn"].endswith(":role/task-svc-task")
    assert definition["executionRoleArn"].endswith(":role/task-svc-execution")


def test_task_role_allows_exactly_what_the_rpcs_do():
    policy = json.loads((DEPLOY / "iam" / "task-role-policy.json").read_text())
    grants = {(action, resource) for s in policy["Statement"] for action in s["Action"] for resource in s["Resource"]}
    table = "arn:${AWS_PARTITION}:dynamodb:${AWS_REGION}:${AWS_ACCOUNT_ID}:table/tasks"
    assert grants == {
        ("dynamodb:GetItem", table), ("dynamodb:PutItem", table), ("dynamodb:UpdateItem", table),
        ("dynamodb:Query", table), ("dynamodb:Query", f"{table}/index/gsi1"),
    }


def test_execution_role_is_scoped_to_this_image_and_log_group():
    policy = json.loads((DEPLOY / "iam" / "execution-role-policy.json").read_text())
    wildcard = [s for s in policy["Statement"] if "*" in s["Resource"]]
    assert [s["Action"] for s in wildcard] == [["ecr:GetAuthorizationToken"]]
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert "arn:${AWS_PARTITION}:ecr:${AWS_REGION}:${AWS_ACCOUNT_ID}:repository/task-svc" in resources
    assert "arn:${AWS_PARTITION}:logs:${AWS_REGION}:${AWS_ACCOUNT_ID}:log-group:/ecs/task-svc:*" in resources
    trust = json.loads((DEPLOY / "iam" / "trust-policy.json").read_text())
    # Only ECS tasks of this account and region (AWS's confused-deputy guard for task roles).
    assert trust["Statement"] == [{"Sid": "EcsTasks", "Effect": "Allow",
                                   "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                                   "Action": ["sts:AssumeRole"],
                                   "Condition": {
                                       "ArnLike": {"aws:SourceArn": "arn:${AWS_PARTITION}:ecs:${AWS_REGION}:${AWS_ACCOUNT_ID}:*"},
                                       "StringEquals": {"aws:SourceAccount": "${AWS_ACCOUNT_ID}"}}}]
    for role in ["TaskRole", "ExecutionRole"]:
        [statement] = load_template()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"!Ref": "AWS::AccountId"}}
        assert statement["Condition"]["ArnLike"] == {
            "aws:SourceArn": {"!Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*"}}


def test_target_group_speaks_grpc_and_checks_health_by_status_code(template):
    tg = template["TargetGroup"]["Properties"]
    assert tg["ProtocolVersion"] == "GRPC" and tg["TargetType"] == "ip"
    assert tg["HealthCheckPath"] == "/grpc.health.v1.Health/Check"
    assert tg["Matcher"] == {"GrpcCode": "0"}
    assert tg["Port"] == 50051


def test_listener_rule_routes_the_service_on_the_https_listener(template):
    rule = template["ListenerRule"]["Properties"]
    assert rule["ListenerArn"] == {"!Ref": "HttpsListenerArn"}
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/tasks.TaskService/*"]
    assert rule["Actions"][0]["TargetGroupArn"] == {"!Ref": "TargetGroup"}


def test_cloud_map_registers_a_records(template):
    assert template["Namespace"]["Type"] == "AWS::ServiceDiscovery::PrivateDnsNamespace"
    assert template["Namespace"]["Properties"]["Name"] == "task-svc.local"
    discovery = template["DiscoveryService"]["Properties"]
    assert discovery["Name"] == "tasks"
    assert discovery["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 30}]


def test_service_is_private_registered_and_rolls_back(template):
    service = template["Service"]["Properties"]
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert service["ServiceRegistries"] == [{"RegistryArn": {"!GetAtt": "DiscoveryService.Arn"}}]
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    ingress = template["TaskSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [rule["SourceSecurityGroupId"] for rule in ingress] == [{"!Ref": "LoadBalancerSecurityGroupId"}]


def test_table_matches_the_model(template):
    table = template["TableTasks"]["Properties"]
    assert table["TableName"] == "tasks"
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_a_stopping_task_serves_for_the_dns_ttl_then_drains():
    task = json.loads((DEPLOY / "task-definition.json").read_text())
    container = task["containerDefinitions"][0]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    # Serve for the Cloud Map TTL (30 s), drain within what is left of the stop timeout less 5 s.
    assert (environment["SHUTDOWN_DELAY_SECS"], environment["SHUTDOWN_TIMEOUT_SECS"]) == ("30", "25")
    assert container["stopTimeout"] == 60 <= 120


def copy_project(tmp_path):
    """generated-example (and the protos it reads) in `tmp_path`, to generate with other settings."""
    project = tmp_path / "example"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "data", "vendor"))
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    return project


def test_cloud_map_callers_are_admitted_on_the_container_port(tmp_path):
    project = copy_project(tmp_path)
    config = project / "svcgen.toml"
    config.write_text(config.read_text().replace(
        "# caller_security_groups = []  # callers in the VPC the tasks admit, besides the load balancer\n# caller_cidrs = []",
        'caller_security_groups = ["sg-0123456789abcdef0"]\ncaller_cidrs = ["10.8.0.0/16"]'))
    generated = run(ROOT / "target" / "debug" / "svcgen", "generate", project)
    assert generated.returncode == 0, generated.stderr
    ingress = load_template(project)["Resources"]["TaskSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [(r.get("SourceSecurityGroupId") or r.get("CidrIp"), r["FromPort"], r["ToPort"]) for r in ingress] == [
        ({"!Ref": "LoadBalancerSecurityGroupId"}, 50051, 50051),
        ("sg-0123456789abcdef0", 50051, 50051),
        ("10.8.0.0/16", 50051, 50051),
    ]
    lint = run(VENV / "cfn-lint", project / "deploy" / "cloudformation.yaml")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_srv_records_carry_the_container_port(tmp_path):
    project = tmp_path / "projects"
    golden = ROOT / "codegen" / "tests" / "golden" / "projects"
    (project / "proto").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(golden / "proto"), str(project)], check=True)
    (project / "svcgen.toml").write_text(
        (golden / "svcgen.toml").read_text() + '\n[deploy.cloud_map]\nrecord_type = "SRV"\n'
    )
    generated = run(ROOT / "target" / "debug" / "svcgen", "generate", project)
    assert generated.returncode == 0, generated.stderr
    path = project / "deploy" / "cloudformation.yaml"
    lint = run(VENV / "cfn-lint", path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    resources = yaml.load(path.read_text(), Loader=CfnLoader)["Resources"]
    records = resources["DiscoveryService"]["Properties"]["DnsConfig"]["DnsRecords"]
    assert records == [{"Type": "SRV", "TTL": 30}]
    registry = resources["Service"]["Properties"]["ServiceRegistries"][0]
    assert registry["ContainerName"] == "projects-svc" and registry["ContainerPort"] == 50051


def test_a_domain_routes_its_host_to_the_service_and_its_health(tmp_path):
    project = copy_project(tmp_path)
    config = project / "svcgen.toml"
    config.write_text(config.read_text().replace("[deploy]\n", '[deploy]\ndomain = "tasks.example.com"\n'))
    generated = run(ROOT / "target" / "debug" / "svcgen", "generate", project)
    assert generated.returncode == 0, generated.stderr
    path = project / "deploy" / "cloudformation.yaml"
    lint = run(VENV / "cfn-lint", "--regions", "us-east-1", "cn-north-1", "us-gov-west-1", "--", path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rule = load_template(project)["Resources"]["ListenerRule"]["Properties"]
    assert rule["Conditions"] == [
        {"Field": "path-pattern",
         "PathPatternConfig": {"Values": ["/grpc.health.v1.Health/*", "/tasks.TaskService/*"]}},
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["tasks.example.com"]}},
    ]


def test_alarms_are_valid_put_metric_alarm_input_and_the_template_creates_the_same():
    import botocore.session
    from botocore.validate import validate_parameters

    cloudwatch = botocore.session.get_session().get_service_model("cloudwatch")
    shape = cloudwatch.operation_model("PutMetricAlarm").input_shape
    template = load_template()["Resources"]
    alarms = {}
    for path in sorted((DEPLOY / "monitoring").glob("*.json")):
        if path.name != "dashboard.json":
            alarm = json.loads(path.read_text())
            validate_parameters(alarm, shape)  # raises ParamValidationError listing every problem
            alarms[alarm["AlarmName"]] = alarm
    assert sorted(alarms) == ["task-svc-latency-p99", "task-svc-server-errors", "task-svc-store-throttles",
                              "task-svc-unhealthy-hosts"]
    in_template = {r["Properties"]["AlarmName"]: r["Properties"] for r in template.values()
                   if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(in_template) == sorted(alarms)
    for name, alarm in alarms.items():
        created = in_template[name]
        for key in ["ComparisonOperator", "Threshold", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData",
                    "AlarmDescription"]:
            assert created[key] == alarm[key], (name, key)
        # Same queries; the load balancer's names come from the stack instead of placeholders.
        for query, expected in zip(created["Metrics"], alarm["Metrics"], strict=True):
            assert (query["Id"], query["ReturnData"]) == (expected["Id"], expected["ReturnData"])
            if "MetricStat" in expected:
                got, want = query["MetricStat"], expected["MetricStat"]
                assert (got["Stat"], got["Period"]) == (want["Stat"], want["Period"])
                assert got["Metric"]["MetricName"] == want["Metric"]["MetricName"]
                assert [d["Name"] for d in got["Metric"]["Dimensions"]] == [d["Name"] for d in want["Metric"]["Dimensions"]]
    # Without [deploy.alarms] topic they notify nobody until the parameter names one.
    assert "AlarmActions" not in alarms["task-svc-latency-p99"]
    assert in_template["task-svc-latency-p99"]["AlarmActions"]["!If"][0] == "HasAlarmTopic"
    assert alarms["task-svc-latency-p99"]["Threshold"] == 1000
    p99 = alarms["task-svc-latency-p99"]["Metrics"][0]["MetricStat"]
    assert p99["Stat"] == "p99" and p99["Metric"]["Dimensions"] == [{"Name": "Service", "Value": "task-svc"}]
    unhealthy = alarms["task-svc-unhealthy-hosts"]["Metrics"][0]["MetricStat"]["Metric"]
    assert unhealthy["Namespace"] == "AWS/ApplicationELB"
    assert {d["Value"] for d in unhealthy["Dimensions"]} == {"${TARGET_GROUP_FULL_NAME}", "${LOAD_BALANCER_FULL_NAME}"}


def test_the_dashboard_shows_each_rpc_and_is_the_templates():
    dashboard = json.loads((DEPLOY / "monitoring" / "dashboard.json").read_text())
    titles = [w["properties"]["title"] for w in dashboard["widgets"]]
    assert titles == ["Calls per RPC (per minute)", "Errors by class (% of calls)", "p99 latency per RPC (ms)",
                      "DynamoDB capacity units (svcgen: with indexes)", "DynamoDB throttles, retries, failures", "Load balancer targets"]
    calls = dashboard["widgets"][0]["properties"]["metrics"]
    assert [line[5] for line in calls] == [f"tasks.TaskService/{m}" for m in
                                           ["CreateTask", "GetTask", "UpdateTask", "ListTasks", "ListTasksByAssignee"]]
    assert all(w["properties"]["region"] == "${AWS_REGION}" for w in dashboard["widgets"])
    (resource,) = [r for r in load_template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body, names = resource["Properties"]["DashboardBody"]["!Sub"]
    assert set(names) == {"TARGET_GROUP_FULL_NAME", "LOAD_BALANCER_FULL_NAME"}
    assert json.loads(body.replace("${AWS::Region}", "${AWS_REGION}")) == dashboard


def test_an_alarm_topic_is_notified_and_bad_alarm_settings_are_refused(tmp_path):
    project = copy_project(tmp_path)
    config = project / "svcgen.toml"
    topic = "arn:aws:sns:eu-central-1:123456789012:oncall"
    config.write_text(config.read_text() + f'\n[deploy.alarms]\ntopic = "{topic}"\nlatency_p99_ms = 250\n')
    assert run(ROOT / "target" / "debug" / "svcgen", "generate", project).returncode == 0
    alarm = json.loads((project / "deploy" / "monitoring" / "latency-p99.json").read_text())
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic] and alarm["Threshold"] == 250
    assert load_template(project)["Parameters"]["AlarmTopicArn"]["Default"] == topic
    config.write_text(config.read_text().replace(f'topic = "{topic}"', 'topic = "oncall"'))
    refused = run(ROOT / "target" / "debug" / "svcgen", "generate", project)
    assert refused.returncode != 0 and "deploy.alarms.topic" in refused.stderr, refused.stderr


def generate_with(tmp_path, settings):
    """A copy of generated-example with `settings` appended to its svcgen.toml, generated."""
    project = copy_project(tmp_path)
    config = project / "svcgen.toml"
    config.write_text(config.read_text() + settings)
    generated = run(ROOT / "target" / "debug" / "svcgen", "generate", project)
    assert generated.returncode == 0, generated.stderr
    return project


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """generated-example with the ADOT collector beside the service."""
    return generate_with(tmp_path_factory.mktemp("traced"), '\n[deploy.observability]\ncollector = "adot"\n')


def test_the_collector_passes_the_validators(traced):
    import botocore.session
    from botocore.validate import validate_parameters

    lint = run(VENV / "cfn-lint", "--regions", "us-east-1", "cn-north-1", "us-gov-west-1", "--",
               traced / "deploy" / "cloudformation.yaml")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    ecs = botocore.session.get_session().get_service_model("ecs")
    shape = ecs.operation_model("RegisterTaskDefinition").input_shape
    validate_parameters(json.loads(substituted(traced / "deploy" / "task-definition.json")), shape)
    for policy in ["task-role-policy.json", "execution-role-policy.json"]:
        result = run(VENV / "parliament", input=substituted(traced / "deploy" / "iam" / policy))
        assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    checkov = run(CHECKOV, "--quiet", "--compact", "-f", traced / "deploy" / "cloudformation.yaml", env=env)
    assert checkov.returncode == 0 and "Failed checks: 0" in checkov.stdout, checkov.stdout + checkov.stderr


# The awsxray exporter of the image's ecs-xray.yaml only sends segments: no telemetry records, no
# remote sampling (the service samples itself).
XRAY = ["xray:PutTraceSegments"]


def test_the_collector_runs_beside_the_service_only_when_enabled(traced):
    definition = json.loads((traced / "deploy" / "task-definition.json").read_text())
    service, collector = definition["containerDefinitions"]
    assert service["dependsOn"] == [{"containerName": "otel-collector", "condition": "START"}]
    env = {e["name"]: e["value"] for e in service["environment"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4317"
    assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == ("parentbased_traceidratio", "0.05")
    assert env["METRICS"] == "emf"  # the dashboard and alarms read EMF
    assert collector["name"] == "otel-collector" and collector["essential"] is False
    assert collector["image"] == "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0"
    assert collector["command"] == ["--config=/etc/ecs/ecs-xray.yaml"]
    assert collector["healthCheck"]["command"] == ["CMD", "/healthcheck"]
    assert "portMappings" not in collector and collector["user"] == "4317:4317"
    assert collector["readonlyRootFilesystem"] is True and collector["stopTimeout"] == service["stopTimeout"]
    assert collector["logConfiguration"]["options"]["awslogs-stream-prefix"] == "otel-collector"
    policy = json.loads((traced / "deploy" / "iam" / "task-role-policy.json").read_text())
    traces = policy["Statement"][-1]
    assert (traces["Sid"], traces["Action"], traces["Resource"]) == ("Traces", XRAY, ["*"])

    # The template creates the same.
    resources = load_template(traced)["Resources"]
    app, sidecar = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert app["DependsOn"] == [{"ContainerName": "otel-collector", "Condition": "START"}]
    assert {e["Name"]: e["Value"] for e in app["Environment"]}["OTEL_TRACES_SAMPLER_ARG"] == "0.05"
    assert (sidecar["Name"], sidecar["Image"], sidecar["Essential"]) == ("otel-collector", collector["image"], False)
    assert sidecar["Command"] == collector["command"] and sidecar["User"] == "4317:4317"
    statements = resources["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statements[-1] == {"Sid": "Traces", "Effect": "Allow", "Action": XRAY, "Resource": ["*"]}

    # Without [deploy.observability] none of it.
    definition = json.loads((DEPLOY / "task-definition.json").read_text())
    [service] = definition["containerDefinitions"]
    assert "dependsOn" not in service
    assert not {"OTEL_EXPORTER_OTLP_ENDPOINT", "METRICS"} & {e["name"] for e in service["environment"]}
    policy = json.loads((DEPLOY / "iam" / "task-role-policy.json").read_text())
    assert not [a for s in policy["Statement"] for a in s["Action"] if a.startswith("xray:")]
    [app] = load_template()["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert "DependsOn" not in app
