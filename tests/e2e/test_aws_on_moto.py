"""The deployment artifacts against AWS APIs served by moto: the generated task-role policy is
enforced on task-svc's DynamoDB calls, and the task definition, target group and Cloud Map
namespace/service are accepted and describe back as generated. (moto evaluates IAM actions, not
resource ARNs; ARNs are covered by parliament and tests/deploy.)"""

import json
import os
import urllib.request
from pathlib import Path

import boto3
import grpc
import pytest
import yaml
from google.protobuf import field_mask_pb2

from conftest import ROOT, Service, dynamodb_env

DEPLOY = ROOT / "generated-example" / "deploy"
REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's default account


def endpoint():
    value = os.environ.get("SVCGEN_DYNAMODB_ENDPOINT")
    if not value:
        pytest.fail("SVCGEN_DYNAMODB_ENDPOINT is not set: run the tests through scripts/test.sh, which starts moto")
    return value


def moto_api(path, body=b""):
    # moto reads the raw body; a form content type would hide it.
    request = urllib.request.Request(f"{endpoint()}/moto-api/{path}", data=body, method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10)


def substituted(path):
    text = Path(path).read_text()
    for placeholder, value in {"${AWS_REGION}": REGION, "${AWS_ACCOUNT_ID}": ACCOUNT, "${IMAGE}": "example/task-svc:1"}.items():
        text = text.replace(placeholder, value)
    return text


def client(service, access_key="admin", secret="admin"):
    return boto3.client(service, endpoint_url=endpoint(), region_name=REGION,
                        aws_access_key_id=access_key, aws_secret_access_key=secret)


@pytest.fixture
def dynamodb():
    return dynamodb_env()


@pytest.fixture
def enforced_user(dynamodb):
    """An IAM user holding only the generated task-role policy, with enforcement on."""
    iam = client("iam")
    iam.create_user(UserName="task-svc")
    # moto matches every DynamoDB request against resource "*", so the generated statements are
    # attached with their actions unchanged and their resources widened.
    policy = json.loads(substituted(DEPLOY / "iam" / "task-role-policy.json"))
    for statement in policy["Statement"]:
        statement["Resource"] = "*"
    iam.put_user_policy(UserName="task-svc", PolicyName="task-role", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="task-svc")["AccessKey"]
    moto_api("reset-auth", b"0")
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        moto_api("reset-auth", b"inf")


def test_every_rpc_works_with_exactly_the_generated_policy(dynamodb, enforced_user, stubs, tmp_path):
    pb, grpc_stubs = stubs
    key_id, secret = enforced_user
    env = dict(dynamodb, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    service = Service(tmp_path / "data", env).start()
    try:
        with service.channel() as channel:
            tasks = grpc_stubs.TaskServiceStub(channel)
            created = tasks.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p", title="t", assignee="ada")))
            tasks.GetTask(pb.GetTaskRequest(project_id="p", id=created.id))
            tasks.UpdateTask(pb.UpdateTaskRequest(task=pb.Task(project_id="p", id=created.id, title="u", version=1),
                                                  update_mask=field_mask_pb2.FieldMask(paths=["title"])))
            assert len(tasks.ListTasks(pb.ListTasksRequest(project_id="p")).tasks) == 1
            assert len(tasks.ListTasksByAssignee(pb.ListTasksByAssigneeRequest(assignee="ada")).tasks) == 1
    finally:
        assert service.stop() == 0

    dynamodb = client("dynamodb", key_id, secret)
    key = {"pk": {"S": "PROJECT#p"}, "sk": {"S": f"TASK#{created.id}"}}
    for denied in [lambda: dynamodb.delete_item(TableName="tasks", Key=key),
                   lambda: dynamodb.scan(TableName="tasks")]:
        with pytest.raises(dynamodb.exceptions.ClientError) as error:
            denied()
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, error.value.response


class CfnLoader(yaml.SafeLoader):
    pass


def construct(loader, node, tag):
    if isinstance(node, yaml.SequenceNode):
        return {tag: loader.construct_sequence(node, deep=True)}
    return {tag: loader.construct_scalar(node)}


for tag in ["!Ref", "!GetAtt", "!Sub", "!If", "!Not", "!Equals", "!Join", "!Select", "!Split"]:
    CfnLoader.add_constructor(tag, lambda loader, node, tag=tag: construct(loader, node, tag))


def test_ecs_elbv2_and_cloud_map_accept_the_generated_definitions():
    moto_api("reset")
    definition = json.loads(substituted(DEPLOY / "task-definition.json"))
    ecs = client("ecs")
    registered = ecs.register_task_definition(**definition)["taskDefinition"]
    described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]
    for field in ["family", "networkMode", "requiresCompatibilities", "cpu", "memory"]:
        assert described[field] == definition[field], field
    container = described["containerDefinitions"][0]
    assert container["healthCheck"]["command"] == definition["containerDefinitions"][0]["healthCheck"]["command"]
    assert container["portMappings"][0]["containerPort"] == 50051

    resources = yaml.load((DEPLOY / "cloudformation.yaml").read_text(), Loader=CfnLoader)["Resources"]
    tg = resources["TargetGroup"]["Properties"]
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    elbv2 = client("elbv2")
    created = elbv2.create_target_group(
        Name="task-svc", Protocol=tg["Protocol"], ProtocolVersion=tg["ProtocolVersion"], Port=tg["Port"],
        VpcId=vpc, TargetType=tg["TargetType"], HealthCheckProtocol=tg["HealthCheckProtocol"],
        HealthCheckPath=tg["HealthCheckPath"], HealthCheckIntervalSeconds=tg["HealthCheckIntervalSeconds"],
        HealthCheckTimeoutSeconds=tg["HealthCheckTimeoutSeconds"], HealthyThresholdCount=tg["HealthyThresholdCount"],
        UnhealthyThresholdCount=tg["UnhealthyThresholdCount"], Matcher=tg["Matcher"],
    )["TargetGroups"][0]
    group = elbv2.describe_target_groups(TargetGroupArns=[created["TargetGroupArn"]])["TargetGroups"][0]
    assert group["ProtocolVersion"] == "GRPC"
    assert group["Matcher"] == {"GrpcCode": "0"}
    assert group["HealthCheckPath"] == "/grpc.health.v1.Health/Check"
    assert group["TargetType"] == "ip"

    discovery = client("servicediscovery")
    namespace_name = resources["Namespace"]["Properties"]["Name"]
    operation = discovery.create_private_dns_namespace(Name=namespace_name, Vpc=vpc)["OperationId"]
    namespace_id = discovery.get_operation(OperationId=operation)["Operation"]["Targets"]["NAMESPACE"]
    assert discovery.get_namespace(Id=namespace_id)["Namespace"]["Name"] == "task-svc.local"
    dns = resources["DiscoveryService"]["Properties"]["DnsConfig"]
    service = discovery.create_service(
        Name=resources["DiscoveryService"]["Properties"]["Name"], NamespaceId=namespace_id,
        DnsConfig={"RoutingPolicy": dns["RoutingPolicy"], "DnsRecords": dns["DnsRecords"]},
        HealthCheckCustomConfig={"FailureThreshold": 1},
    )["Service"]
    described = discovery.get_service(Id=service["Id"])["Service"]
    assert described["Name"] == "tasks"
    assert described["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 30}]
