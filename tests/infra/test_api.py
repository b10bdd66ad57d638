"""Issue 3 in the synthesized stack: identity per partition, the REST API, uploads, the sweeper."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import OIDC_CONTEXT, Synth
from tests.infra.test_stack import FUNCTIONS, actions_on, arn_of, as_list, ref, statements_of_role

INDEXES = ("gsi1", "gsi2", "gsi3", "gsi4")


def role_statements_of(synth: Synth, function_key: str) -> list[dict[str, Any]]:
    _, function = synth.only("AWS::Lambda::Function", function_key)
    return statements_of_role(synth, function["Properties"]["Role"]["Fn::GetAtt"][0])


def index_arn(table_id: str, index: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [arn_of(table_id), f"/index/{index}"]]}


def methods(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    """(resource path part, HTTP method) → the method's properties."""
    resources = synth.resources("AWS::ApiGateway::Resource")
    found = {}
    for method in synth.resources("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        part = resources[resource["Ref"]]["Properties"]["PathPart"] if "Ref" in resource else "/"
        found[(part, props["HttpMethod"])] = props
    return found


# --- identity --------------------------------------------------------------------------------


def test_given_a_global_region_then_a_cognito_pool_with_every_role_as_a_group_backs_the_authorizer(
    global_synth: Synth,
) -> None:
    pool_id, pool = global_synth.only("AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert props["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    assert pool["DeletionPolicy"] == "Retain"
    (grid_attribute,) = [a for a in props["Schema"] if a["Name"] == "grid_id"]
    assert grid_attribute["AttributeDataType"] == "String"
    groups = {
        g["Properties"]["GroupName"] for g in global_synth.resources("AWS::Cognito::UserPoolGroup").values()
    }
    assert groups == {"admin", "dispatcher", "grid_worker", "technician", "department", "data_steward"}

    _, authorizer = global_synth.only("AWS::ApiGateway::Authorizer")
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["ProviderARNs"] == [arn_of(pool_id)]
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    assert global_synth.resources("AWS::Lambda::Permission")  # the API's invoke permissions
    assert not [k for k in global_synth.resources("AWS::Lambda::Function") if "Authorizer" in k]


def test_given_the_app_client_then_it_has_no_secret_and_cannot_write_the_grid(global_synth: Synth) -> None:
    _, client = global_synth.only("AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props["GenerateSecret"] is False
    assert "custom:grid_id" in props["ReadAttributes"]
    assert props["WriteAttributes"]
    assert "custom:grid_id" not in props["WriteAttributes"]
    assert not any(attribute.startswith("custom:") for attribute in props["WriteAttributes"])
    assert props["AllowedOAuthFlowsUserPoolClient"] is False


def test_given_china_then_a_token_authorizer_verifies_oidc_tokens_and_no_cognito_exists(
    cn_synth: Synth,
) -> None:
    assert not [
        t for t in (r["Type"] for r in cn_synth.template_json["Resources"].values()) if "Cognito" in t
    ]

    function_id, function = cn_synth.only("AWS::Lambda::Function", "IdentityTokenAuthorizer")
    props = function["Properties"]
    assert props["Handler"] == "authorizer.handler.handler"
    env = props["Environment"]["Variables"]
    assert {k: env[k] for k in ("OIDC_ISSUER", "OIDC_JWKS_URL", "OIDC_AUDIENCE")} == {
        k.upper(): v for k, v in OIDC_CONTEXT.items()
    }
    statements = role_statements_of(cn_synth, "IdentityTokenAuthorizer")
    assert {a for s in statements for a in as_list(s["Action"])} == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }

    _, authorizer = cn_synth.only("AWS::ApiGateway::Authorizer")
    auth = authorizer["Properties"]
    assert auth["Type"] == "TOKEN"
    assert auth["IdentitySource"] == "method.request.header.Authorization"
    assert auth["AuthorizerResultTtlInSeconds"] == 300
    assert json.dumps(arn_of(function_id)) in json.dumps(auth["AuthorizerUri"])


def test_given_each_region_then_the_stack_reports_its_authorizer_mode(synth: Synth) -> None:
    outputs = synth.template_json["Outputs"]
    if synth.region.startswith("cn-"):
        assert outputs["AuthorizerMode"]["Value"] == "oidc-token"
        assert "UserPoolId" not in outputs
    else:
        assert outputs["AuthorizerMode"]["Value"] == "cognito"
        assert {"UserPoolId", "UserPoolClientId"} <= set(outputs)


# --- the REST API ----------------------------------------------------------------------------


def test_given_the_api_then_it_is_regional(synth: Synth) -> None:
    _, api = synth.only("AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_given_the_proxy_route_then_every_method_uses_the_authorizer_and_validates_parameters(
    synth: Synth,
) -> None:
    authorizer_id, _ = synth.only("AWS::ApiGateway::Authorizer")
    validator_id, validator = synth.only("AWS::ApiGateway::RequestValidator")
    assert validator["Properties"]["ValidateRequestParameters"] is True
    api_function_id, _ = synth.only("AWS::Lambda::Function", FUNCTIONS["api"])

    proxy = methods(synth)[("{proxy+}", "ANY")]
    expected_type = "CUSTOM" if synth.region.startswith("cn-") else "COGNITO_USER_POOLS"
    assert proxy["AuthorizationType"] == expected_type
    assert proxy["AuthorizerId"] == ref(authorizer_id)
    assert proxy["RequestValidatorId"] == ref(validator_id)
    assert proxy["Integration"]["Type"] == "AWS_PROXY"
    assert json.dumps(arn_of(api_function_id)) in json.dumps(proxy["Integration"]["Uri"])


def test_given_the_openapi_route_then_it_needs_no_token(synth: Synth) -> None:
    found = methods(synth)
    openapi = found[("openapi.json", "GET")]
    assert openapi["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in openapi
    # Only the OpenAPI document and CORS preflights are public; the detections webhook has no user
    # authorizer but needs an API key (and the vendor's HMAC signature, checked by its function).
    webhook = {
        key
        for key, props in found.items()
        if props.get("ApiKeyRequired") and props["AuthorizationType"] == "NONE" and key[1] != "OPTIONS"
    }
    assert webhook == {("detections", "POST"), ("uploads", "POST")}
    public = {key for key, props in found.items() if props["AuthorizationType"] == "NONE"} - webhook
    assert {method for _, method in public} <= {"GET", "OPTIONS"}
    assert [key for key in public if key[1] == "GET"] == [("openapi.json", "GET")]


def test_given_the_stage_then_it_logs_access_as_json_throttles_and_traces_where_available(
    synth: Synth,
) -> None:
    log_group_id, _ = synth.only("AWS::Logs::LogGroup", "ApiAccessLogs")
    _, stage = synth.only("AWS::ApiGateway::Stage")
    props = stage["Properties"]

    access = props["AccessLogSetting"]
    assert access["DestinationArn"] == arn_of(log_group_id)
    fields = json.loads(access["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert {"status", "ip", "principalId"} <= set(fields)

    (settings,) = props["MethodSettings"]
    assert settings["HttpMethod"] == "*"
    assert settings["ResourcePath"] == "/*"
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] == 50
    assert settings["ThrottlingBurstLimit"] == 100
    assert props["TracingEnabled"] is (not synth.region.startswith("cn-"))


def test_given_the_stage_then_api_gateway_may_write_its_logs_through_the_account_role(synth: Synth) -> None:
    _, account = synth.only("AWS::ApiGateway::Account")
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synth.template_json["Resources"][role_id]
    assert "ManagedPolicyArns" not in role["Properties"]
    stage_id, stage = synth.only("AWS::ApiGateway::Stage")
    account_id = next(iter(synth.resources("AWS::ApiGateway::Account")))
    assert account_id in as_list(stage.get("DependsOn", [])), stage_id


def test_given_cors_then_preflights_and_gateway_errors_allow_the_configured_origin(synth: Synth) -> None:
    options = [props for (_, method), props in methods(synth).items() if method == "OPTIONS"]
    assert options
    for props in options:
        assert props["Integration"]["Type"] == "MOCK"
    responses = synth.resources("AWS::ApiGateway::GatewayResponse").values()
    assert {r["Properties"]["ResponseType"] for r in responses} == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses:
        headers = response["Properties"]["ResponseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"


# --- the API function ------------------------------------------------------------------------


def test_given_the_api_role_then_it_reads_and_writes_the_table_and_queries_indexes_but_never_scans(
    synth: Synth,
) -> None:
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    statements = role_statements_of(synth, FUNCTIONS["api"])

    assert actions_on(statements, arn_of(table_id)) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
    }
    for index in INDEXES:
        assert actions_on(statements, index_arn(table_id, index)) == {"dynamodb:Query"}, index


def test_given_the_api_role_then_it_presigns_uploads_reads_its_secret_and_subscribes_workers(
    synth: Synth,
) -> None:
    uploads_id, _ = synth.only("AWS::S3::Bucket", "Uploads")
    secret_id, _ = synth.only("AWS::SecretsManager::Secret", "ApiCursorSecret")
    topic_id, _ = synth.only("AWS::SNS::Topic", "Notifications")
    statements = role_statements_of(synth, FUNCTIONS["api"])

    uploads_objects = {"Fn::Join": ["", [arn_of(uploads_id), "/uploads/*"]]}
    assert actions_on(statements, uploads_objects) == {"s3:PutObject", "s3:GetObject"}
    assert actions_on(statements, arn_of(uploads_id)) == set()
    assert actions_on(statements, ref(secret_id)) == {"secretsmanager:GetSecretValue"}
    assert actions_on(statements, ref(topic_id)) == {
        "sns:Subscribe",
        "sns:ListSubscriptionsByTopic",
        "sns:SetSubscriptionAttributes",
    }


def test_given_the_cursor_secret_then_it_is_generated_and_encrypted_with_the_data_key(synth: Synth) -> None:
    key_id, _ = synth.only("AWS::KMS::Key", "StorageDataKey")
    _, secret = synth.only("AWS::SecretsManager::Secret", "ApiCursorSecret")
    assert secret["Properties"]["KmsKeyId"] == arn_of(key_id)
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


def test_given_the_uploads_bucket_then_it_is_private_kms_encrypted_logged_expiring_and_allows_browser_posts(
    synth: Synth,
) -> None:
    key_id, _ = synth.only("AWS::KMS::Key", "StorageDataKey")
    logs_id, _ = synth.only("AWS::S3::Bucket", "AccessLogs")
    _, uploads = synth.only("AWS::S3::Bucket", "Uploads")
    props = uploads["Properties"]
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": arn_of(key_id),
    }
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["LoggingConfiguration"]["DestinationBucketName"] == ref(logs_id)
    (cors,) = props["CorsConfiguration"]["CorsRules"]
    assert "POST" in cors["AllowedMethods"]
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 731


# --- the sweeper -----------------------------------------------------------------------------


def test_given_the_sweeper_then_an_eventbridge_schedule_runs_it_every_five_minutes(synth: Synth) -> None:
    function_id, function = synth.only("AWS::Lambda::Function", FUNCTIONS["sweeper"])
    _, rule = synth.only("AWS::Events::Rule", "SweeperSchedule")
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "rate(5 minutes)"
    assert props["State"] == "ENABLED"
    (target,) = props["Targets"]
    assert target["Arn"] == arn_of(function_id)
    assert function["Properties"]["Handler"] == "sweeper.handler.handler"
    assert function["Properties"]["Timeout"] < 5 * 60


def test_given_the_sweeper_role_then_it_queries_its_indexes_and_writes_conditionally_without_scan(
    synth: Synth,
) -> None:
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    statements = role_statements_of(synth, FUNCTIONS["sweeper"])
    assert actions_on(statements, arn_of(table_id)) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    # gsi1 too since issue 5: the transient detection orders due to close (``DETTRANSIENT``).
    for index in ("gsi1", "gsi2", "gsi3", "gsi4"):
        assert actions_on(statements, index_arn(table_id, index)) == {"dynamodb:Query"}, index


# --- across the stack ------------------------------------------------------------------------


def test_given_any_role_then_it_may_never_scan_delete_items_or_administer_the_table(synth: Synth) -> None:
    forbidden = {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:DeleteTable", "dynamodb:UpdateTable"}
    holders = [*synth.resources("AWS::IAM::Policy").values(), *synth.resources("AWS::IAM::Role").values()]
    for holder in holders:
        documents = [p["PolicyDocument"] for p in holder["Properties"].get("Policies", [])]
        if "PolicyDocument" in holder["Properties"]:
            documents.append(holder["Properties"]["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] == "Deny":
                    continue  # e.g. the API's explicit deny of changes to audit entries
                assert not forbidden & set(as_list(statement["Action"])), statement
