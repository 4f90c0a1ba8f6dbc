"""The deployment files: serverless.yml and infra/*.yml.

The first tests read the YAML only (no npm, no AWS). ``test_package_and_lint`` runs
``infra/check.sh``: the Lambda build, ``npm ci``, ``osls package`` offline and
``cfn-lint``; it needs ``npx`` and the network to PyPI and npm.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from digestpub.subscriptions.endpoints import ROUTES

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "prod")
# digestpub.newsletter.fanout.BATCH_SIZE: recipients named by one SendQueue message.
RECIPIENTS_PER_MESSAGE = 50

# IAM statements allowed a wildcard, each with the reason AWS requires it. None today:
# every action this project uses supports resource-level permissions.
WILDCARD_EXCEPTIONS: dict[str, str] = {}


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short tags (!Ref, !Sub, ...) as their long form.

    ``${...}`` variables of osls need nothing: to YAML they are plain strings.
    """


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    return load(ROOT / "serverless.yml")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def infra() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in sorted((ROOT / "infra").glob("*.yml"))}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _param(service: dict[str, Any], name: str, stage: str) -> Any:
    params = service["params"]
    return params.get(stage, {}).get(name, params["default"][name])


def _resolve_param_refs(value: Any, service: dict[str, Any], stage: str) -> Any:
    """``${param:x}`` replaced by its value for ``stage`` (only that kind of variable)."""
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\$\{param:(\w+)\}", value)
    if whole:
        return _param(service, whole.group(1), stage)
    return re.sub(r"\$\{param:(\w+)\}", lambda m: str(_param(service, m.group(1), stage)), value)


def _wildcard_problems(statements: list[dict[str, Any]], where: str) -> list[str]:
    problems = []
    for number, statement in enumerate(statements):
        label = f"{where} statement {statement.get('Sid', number)}"
        if statement.get("Effect") != "Allow":
            continue  # a Deny takes rights away: "s3:*" there is the point (DenyInsecureTransport)
        if label in WILDCARD_EXCEPTIONS:
            continue
        for key in ("NotAction", "NotResource"):
            if key in statement:
                problems.append(f"{label}: {key} grants everything else")
        for action in _listed(statement.get("Action", [])):
            if not isinstance(action, str) or "*" in action:
                problems.append(f"{label}: wildcard action {action!r}")
        for resource in _listed(statement.get("Resource", [])):
            if resource == "*" or (isinstance(resource, dict) and resource.get("Fn::Sub") == "*"):
                problems.append(f"{label}: Resource '*'")
    return problems


def _infra_resources(infra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {}
    for name, template in infra.items():
        for logical_id, resource in template.get("Resources", {}).items():
            assert logical_id not in resources, f"{logical_id} is declared twice (again in {name})"
            resources[logical_id] = resource
    return resources


def _sub(value: Any, names: dict[str, str]) -> str:
    """A string or ``Fn::Sub`` with ``${Name}`` taken from ``names`` (resource Refs, pseudo-parameters)."""
    if isinstance(value, str):
        return value
    template = value["Fn::Sub"]
    assert isinstance(template, str), value
    return re.sub(r"\$\{([\w:]+)\}", lambda m: names[m.group(1)], template)


# --- serverless.yml ------------------------------------------------------------------


def test_runtime_is_python_312_everywhere(service: dict[str, Any]) -> None:
    assert service["provider"]["runtime"] == "python3.12"
    for name, function in service["functions"].items():
        assert function.get("runtime", "python3.12") == "python3.12", name


def test_framework_and_stages(service: dict[str, Any]) -> None:
    assert service["frameworkVersion"] == ">=3"
    assert set(service["params"]) >= {"default", *STAGES}


def test_every_handler_file_exists(service: dict[str, Any]) -> None:
    for name, function in service["functions"].items():
        module, _, attribute = function["handler"].rpartition(".")
        assert module.startswith("functions/"), f"{name}: {module}"
        assert (ROOT / f"{module}.py").is_file(), f"{name}: {module}.py is missing"
        assert attribute == "handler", name


def test_iam_grants_named_actions_on_named_resources(service: dict[str, Any]) -> None:
    statements = service["provider"]["iam"]["role"]["statements"]
    assert statements, "provider.iam.role.statements is empty"
    assert _wildcard_problems(statements, "serverless.yml") == []


def test_resource_policies_in_infra_grant_no_wildcards(infra: dict[str, dict[str, Any]]) -> None:
    problems = []
    for name, template in infra.items():
        for logical_id, resource in template.get("Resources", {}).items():
            document = resource.get("Properties", {}).get("PolicyDocument")
            if document:
                problems += _wildcard_problems(document["Statement"], f"{name} {logical_id}")
    assert problems == []


def test_the_wildcard_check_catches_what_it_should() -> None:
    bad = [
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b", "*"]},
        {"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "arn:aws:s3:::b"},
    ]
    assert len(_wildcard_problems(bad, "t")) == len(bad)
    assert _wildcard_problems([{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}], "t") == []


def test_every_infra_file_is_included(service: dict[str, Any]) -> None:
    included = {
        match.group(1)
        for item in service["resources"]
        if isinstance(item, str) and (match := re.fullmatch(r"\$\{file\((infra/[\w.-]+\.yml)\)\}", item))
    }
    on_disk = {f"infra/{path.name}" for path in (ROOT / "infra").glob("*.yml")}
    assert on_disk, "no infra/*.yml"
    assert included == on_disk


def test_ledger_table_is_subscribers_table_plus_ledger(
    service: dict[str, Any], infra: dict[str, dict[str, Any]]
) -> None:
    resources = _infra_resources(infra)
    names = {"AWS::StackName": "digestpub-dev"}
    subscribers = _sub(resources["SubscribersTable"]["Properties"]["TableName"], names)
    names["SubscribersTable"] = subscribers  # Ref of a table is its name
    ledger = _sub(resources["LedgerTable"]["Properties"]["TableName"], names)
    assert ledger == f"{subscribers}-ledger"
    assert _sub(service["provider"]["environment"]["DIGESTPUB_SUBSCRIBERS"], names) == f"dynamodb://{subscribers}"


def test_tables_match_the_adapters(infra: dict[str, dict[str, Any]]) -> None:
    resources = _infra_resources(infra)
    subscribers = resources["SubscribersTable"]["Properties"]
    assert subscribers["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    (index,) = subscribers["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "status-frequency-index"
    assert index["KeySchema"] == [
        {"AttributeName": "status_frequency", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    ledger = resources["LedgerTable"]["Properties"]
    assert ledger["KeySchema"] == [
        {"AttributeName": "issue_id", "KeyType": "HASH"},
        {"AttributeName": "subscriber_id", "KeyType": "RANGE"},
    ]
    assert ledger["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    for table in (subscribers, ledger):
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_environment_names_every_setting_the_functions_read(service: dict[str, Any]) -> None:
    environment = service["provider"]["environment"]
    expected = {
        "DIGESTPUB_SOURCE",
        "DIGESTPUB_DEST",
        "DIGESTPUB_STATE",
        "DIGESTPUB_SUBSCRIBERS",
        "DIGESTPUB_MAILER",
        "DIGESTPUB_BASE_URL",
        "DIGESTPUB_API_URL",
        "DIGESTPUB_FROM_ADDRESS",
        "DIGESTPUB_TOKEN_KEY_PARAMETER",
        "DIGESTPUB_SEND_QUEUE_URL",
        "DIGESTPUB_SEND_RATE",
        "DIGESTPUB_SEND_CONCURRENCY",
        "DIGESTPUB_HUBS",
        "DIGESTPUB_IDEMPOTENCY_TABLE",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
    }
    assert expected <= set(environment)
    assert environment["DIGESTPUB_SOURCE"] == "s3://${param:sourceBucket}/${param:sourcePrefix}"
    for stage in ("default", *STAGES):
        prefix = _param(service, "sourcePrefix", stage)
        assert prefix == "" or prefix.endswith("/"), f"{stage}: sourcePrefix {prefix!r}"
        assert str(_param(service, "tokenKeyParameter", stage)).startswith("/"), stage


@pytest.mark.parametrize("stage", ["default", *STAGES])
def test_queues_outlast_their_consumers(service: dict[str, Any], stage: str) -> None:
    """Visibility timeout at least 6 times the consumer's timeout, per stage."""
    pairs = {
        "sendQueueVisibilityTimeout": "sendBatchTimeout",
        "publishQueueVisibilityTimeout": "publishFeedsTimeout",
    }
    for visibility, timeout in pairs.items():
        assert int(_param(service, visibility, stage)) >= 6 * int(_param(service, timeout, stage)), (stage, visibility)


@pytest.mark.parametrize("stage", ["default", *STAGES])
def test_a_full_send_batch_fits_in_the_timeout(service: dict[str, Any], stage: str) -> None:
    """Each worker sends at sendRate / sendConcurrency: a full message, then an outage and the
    retries of deferred addresses at their limits, must end well inside the timeout."""
    per_worker = float(_param(service, "sendRate", stage)) / int(_param(service, "sendConcurrency", stage))
    seconds = RECIPIENTS_PER_MESSAGE * int(_param(service, "sendBatchSize", stage)) / per_worker
    seconds += float(_param(service, "sendOutageLimit", stage)) + float(_param(service, "sendRetryLimit", stage))
    environment = service["functions"]["sendBatch"]["environment"]
    assert environment["DIGESTPUB_OUTAGE_LIMIT"] == "${param:sendOutageLimit}"
    assert environment["DIGESTPUB_RETRY_LIMIT"] == "${param:sendRetryLimit}"
    assert seconds <= 0.9 * int(_param(service, "sendBatchTimeout", stage)), (stage, seconds)


# Each /subscribe holds an instance of subscriptions at least this long (INLINE_SEND_ANSWER_FLOOR).
SUBSCRIBE_SECONDS = 0.3


@pytest.mark.parametrize("stage", ["default", *STAGES])
def test_the_subscription_endpoints_keep_to_their_lane(service: dict[str, Any], stage: str) -> None:
    """The API stage is throttled, and the function's reserved instances can serve that rate."""
    rate = float(_param(service, "apiRateLimit", stage))
    burst = int(_param(service, "apiBurstLimit", stage))
    reserved = int(_param(service, "subscriptionsReservedConcurrency", stage))
    assert 0 < rate <= burst, (stage, rate, burst)
    assert reserved >= rate * SUBSCRIBE_SECONDS, (stage, reserved, rate)
    assert service["functions"]["subscriptions"]["reservedConcurrency"] == "${param:subscriptionsReservedConcurrency}"
    (extensions,) = [
        item["extensions"] for item in service["resources"] if isinstance(item, dict) and "extensions" in item
    ]
    stage_properties = extensions["HttpApiStage"]["Properties"]
    assert stage_properties["DefaultRouteSettings"]["ThrottlingRateLimit"] == "${param:apiRateLimit}"
    assert stage_properties["DefaultRouteSettings"]["ThrottlingBurstLimit"] == "${param:apiBurstLimit}"
    assert stage_properties["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    access_log = json.loads(stage_properties["AccessLogSettings"]["Format"])
    assert {"requestId", "ip", "route", "status"} <= set(access_log)
    assert not any("querystring" in value.lower() for value in access_log.values()), "tokens would be logged"


def test_events(service: dict[str, Any]) -> None:
    functions = service["functions"]

    def events(name: str, kind: str) -> list[dict[str, Any]]:
        return [event[kind] for event in functions[name]["events"] if kind in event]

    for name in ("publishFeeds", "sendBatch"):
        (sqs,) = events(name, "sqs")
        assert sqs["functionResponseType"] == "ReportBatchItemFailures"
        assert "maximumConcurrency" in sqs
    assert events("sendBatch", "sqs")[0]["arn"] == {"Fn::GetAtt": ["SendQueue", "Arn"]}
    assert events("publishFeeds", "sqs")[0]["arn"] == {"Fn::GetAtt": ["PublishQueue", "Arn"]}
    assert "reservedConcurrency" not in functions["sendBatch"]
    schedules = events("publishFeeds", "schedule") + events("planNewsletter", "schedule")
    assert all(schedule["method"] == "scheduler" for schedule in schedules)
    frequencies = sorted(schedule["input"]["frequency"] for schedule in events("planNewsletter", "schedule"))
    assert frequencies == ["daily", "weekly"]
    assert all("timezone" in schedule for schedule in events("planNewsletter", "schedule"))
    routes = {(route["method"], route["path"]) for route in events("subscriptions", "httpApi")}
    # Every route the endpoints answer, and no other: a method missing here is a 404 in the cloud only.
    assert routes == {(method, path) for path, methods in ROUTES.items() for method in methods}
    assert events("sesEvents", "sns")[0]["arn"] == {"Ref": "SesEventsTopic"}


def test_stack_parameters_feed_every_infra_parameter(service: dict[str, Any], infra: dict[str, dict[str, Any]]) -> None:
    declared: dict[str, Any] = {}
    for template in infra.values():
        for name, parameter in template.get("Parameters", {}).items():
            assert declared.get(name, parameter) == parameter, f"{name} is declared differently in two files"
            declared[name] = parameter
    passed = {item["ParameterKey"] for item in service["provider"]["stackParameters"]}
    assert passed <= set(declared), passed - set(declared)
    missing = {name for name, parameter in declared.items() if "Default" not in parameter} - passed
    assert not missing, f"infra parameters without a default that serverless.yml does not pass: {missing}"


def test_every_function_and_dead_letter_queue_has_an_alarm(
    service: dict[str, Any], infra: dict[str, dict[str, Any]]
) -> None:
    stack = "digestpub-dev"
    names = {"AWS::StackName": stack}
    watched: dict[str, set[str]] = {"FunctionName": set(), "QueueName": set()}
    for resource in _infra_resources(infra).values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            for dimension in resource["Properties"].get("Dimensions", []):
                metric = resource["Properties"]["MetricName"]
                if dimension["Name"] == "FunctionName" and metric == "Errors":
                    watched["FunctionName"].add(_sub(dimension["Value"], names))
                if dimension["Name"] == "QueueName" and metric == "ApproximateNumberOfMessagesVisible":
                    watched["QueueName"].add(_sub(dimension["Value"], names))
    functions = {
        function["name"].replace("${self:provider.stackName}", stack) for function in service["functions"].values()
    }
    assert functions == watched["FunctionName"]
    resources = _infra_resources(infra)
    dead_letter_queues = {
        _sub(resource["Properties"]["QueueName"], names)
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::SQS::Queue" and logical_id.endswith("DeadLetterQueue")
    }
    assert dead_letter_queues
    assert dead_letter_queues == watched["QueueName"]
    for resource in resources.values():
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in resource["Properties"]:
            assert resource["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5


def test_feeds_bucket_is_private_behind_cloudfront(infra: dict[str, dict[str, Any]]) -> None:
    resources = _infra_resources(infra)
    for bucket in ("FeedsBucket", "StateBucket"):
        block = resources[bucket]["Properties"]["PublicAccessBlockConfiguration"]
        assert all(block[key] is True for key in block), bucket
    assert resources["StateBucket"]["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    origin = resources["FeedsDistribution"]["Properties"]["DistributionConfig"]["Origins"][0]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["FeedsOriginAccessControl", "Id"]}
    (grant,) = [
        statement
        for statement in resources["FeedsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
    ]
    assert grant["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert "AWS:SourceArn" in grant["Condition"]["StringEquals"]


# --- the real thing: build, npm ci, osls package, cfn-lint ---------------------------


@pytest.mark.deploy
@pytest.mark.skipif(shutil.which("npx") is None, reason="npx is not installed: install Node.js, then `npm ci`")
def test_package_and_lint() -> None:
    """infra/check.sh passes, and the packaged template keeps least privilege and the alarms."""
    bin_dir = str(Path(sys.executable).parent)  # cfn-lint and pip of this environment first
    environment = {**os.environ, "PYTHON": sys.executable, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(
        ["bash", "infra/check.sh"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]

    template = json.loads((ROOT / ".serverless/cloudformation-template-update-stack.json").read_text())
    resources = template["Resources"]
    role = resources["IamRoleLambdaExecution"]["Properties"]["Policies"]
    statements = [statement for policy in role for statement in policy["PolicyDocument"]["Statement"]]
    assert _wildcard_problems(statements, "packaged role") == []

    functions = {
        resource["Properties"]["FunctionName"]: resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert len(functions) == 5
    alarmed = {
        dimension["Value"]["Fn::Sub"].replace("${AWS::StackName}", "digestpub-dev")
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"]["MetricName"] == "Errors"
        for dimension in resource["Properties"]["Dimensions"]
    }
    assert set(functions) == alarmed
    for name, properties in functions.items():
        assert properties["Runtime"] == "python3.12", name
        assert properties["Code"]["S3Key"].endswith("/digestpub-lambda.zip"), name
        assert "DIGESTPUB_SEND_QUEUE_URL" in properties["Environment"]["Variables"], name
    reserved = {name for name, properties in functions.items() if "ReservedConcurrentExecutions" in properties}
    assert reserved == {"digestpub-dev-subscriptions"}, "only the endpoints have a lane of their own"

    for stage in STAGES:
        path = ".serverless" if stage == "dev" else "build/serverless-prod"
        packaged = json.loads((ROOT / path / "cloudformation-template-update-stack.json").read_text())
        _check_the_api_lane(packaged, stage)


def _check_the_api_lane(template: dict[str, Any], stage: str) -> None:
    """The packaged HTTP API stage: throttled at the stage's params, logging to infra/api.yml's group."""
    service = load(ROOT / "serverless.yml")
    resources = template["Resources"]
    (api_stage,) = [resource for resource in resources.values() if resource["Type"] == "AWS::ApiGatewayV2::Stage"]
    settings = api_stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == _param(service, "apiRateLimit", stage)
    assert settings["ThrottlingBurstLimit"] == _param(service, "apiBurstLimit", stage)
    log_group = api_stage["Properties"]["AccessLogSettings"]["DestinationArn"]
    assert log_group == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    assert "HttpApiAccessLogGroup" in api_stage["DependsOn"]
    assert resources["HttpApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "ApiAccessLogRetentionDays"}
    passed = {item["ParameterKey"]: item["ParameterValue"] for item in service["provider"]["stackParameters"]}
    assert passed["ApiAccessLogRetentionDays"] == "${param:logRetentionDays}"
    (subscriptions,) = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"]["FunctionName"].endswith("-subscriptions")
    ]
    assert subscriptions["ReservedConcurrentExecutions"] == _param(service, "subscriptionsReservedConcurrency", stage)
