"""Reads the synthesized CloudFormation template: what the local platform must emulate.

The local platform is wired from ``cdk.out/<stack>.template.json`` (DESIGN.md, "Local platform"),
never from a second hand-kept list. :func:`read_template` returns a :class:`TemplateDescription`:

- ``functions``: handler string, the ``functions/<package>`` it lives in (checked against the
  code asset in ``<stack>.assets.json`` when present), runtime, timeout, memory, and the raw
  environment, resolved per deployment by :meth:`FunctionSpec.environment` against a
  :class:`Resolver` (``Ref`` / ``Fn::GetAtt`` / ``Fn::Join`` / ``Fn::Sub`` / ``Fn::Select`` /
  ``Fn::Split`` and the pseudo parameters);
- ``event_source_mappings`` (SQS queues and DynamoDB streams), ``queues``, ``tables``, ``topics``,
  ``buckets``, ``secrets``, ``delivery_streams`` (Firehose), ``topic_rules`` (IoT SQL and actions),
  ``schedules`` (EventBridge ``rate``/``cron`` rules → functions), ``rest_apis`` (resources,
  methods, authorizers), ``user_pools`` (Cognito: groups, clients), ``api_keys`` (ids only: the
  local gateway checks no key);
- ``unsupported``: every resource (or setting) the platform cannot emulate, with the reason, so
  that the platform reports it at start instead of skipping it silently.

Nothing here talks to AWS or moto: :mod:`infra.local.provision` creates the resources and returns
the :class:`Physical` values a :class:`Resolver` resolves references with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.constructs import REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"
DEFAULT_ACCOUNT_ID = "123456789012"

SQS_DEFAULT_BATCH_SIZE = 10
STREAM_DEFAULT_BATCH_SIZE = 100
SQS_DEFAULT_VISIBILITY_TIMEOUT_S = 30


class TemplateError(ValueError):
    """The template cannot be read as described."""


class UnresolvedReference(TemplateError):
    """A reference has no local value (the resource was not provisioned or is not emulated)."""


# ---------------------------------------------------------------------------------------------
# Reference resolution


@dataclass(frozen=True)
class Physical:
    """A resource's local identity: what ``Ref`` returns and its ``Fn::GetAtt`` attributes."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    def attribute(self, name: str) -> str | None:
        return self.attributes.get(name)


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class Resolver:
    """Resolves CloudFormation intrinsic functions against local physical values."""

    def __init__(
        self,
        physical: Mapping[str, Physical],
        *,
        region: str,
        account_id: str = DEFAULT_ACCOUNT_ID,
        stack_name: str = "SmartZone",
        parameters: Mapping[str, str] | None = None,
        resource_types: Mapping[str, str] | None = None,
    ) -> None:
        self.physical = physical
        self.region = region
        self.account_id = account_id
        self.stack_name = stack_name
        self.partition = partition_of(region)
        self.parameters = dict(parameters or {})
        self.resource_types = dict(resource_types or {})
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
        }

    def _describe(self, logical_id: str) -> str:
        kind = self.resource_types.get(logical_id)
        return f"{logical_id} ({kind})" if kind else logical_id

    def ref(self, name: str, where: str = "") -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name].ref
        raise UnresolvedReference(f"{where or 'template'}: Ref {self._describe(name)} has no local value")

    def get_att(self, name: str, attribute: str, where: str = "") -> str:
        physical = self.physical.get(name)
        value = physical.attribute(attribute) if physical is not None else None
        if value is None:
            raise UnresolvedReference(
                f"{where or 'template'}: Fn::GetAtt {self._describe(name)}.{attribute} has no local value"
            )
        return value

    def resolve(self, value: Any, where: str = "") -> Any:
        """``value`` with every intrinsic function replaced by its local value."""
        if isinstance(value, list):
            return [self.resolve(item, where) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {key: self.resolve(item, where) for key, item in value.items()}
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return self.ref(arg, where)
        if fn == "Fn::GetAtt":
            name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(name, self.resolve(attribute, where), where)
        if fn == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(item) for item in self.resolve(items, where))
        if fn == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else arg
            return self._sub(template, self.resolve(variables, where), where)
        if fn == "Fn::Select":
            index, items = arg
            return self.resolve(items, where)[int(self.resolve(index, where))]
        if fn == "Fn::Split":
            separator, text = arg
            return str(self.resolve(text, where)).split(separator)
        raise UnresolvedReference(f"{where or 'template'}: {fn} is not supported by the local platform")

    def _sub(self, template: str, variables: Mapping[str, Any], where: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name not in self.pseudo:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute, where)
            return self.ref(name, where)

        return re.sub(r"\$\{([^}]+)\}", replace, template)


# ---------------------------------------------------------------------------------------------
# Event filter patterns (Lambda event-source mapping filters)

_PATTERN_OPERATORS = ("prefix", "suffix", "exists", "anything-but", "equals-ignore-case")


class FilterPatternError(TemplateError):
    """A filter pattern uses something the local platform does not implement."""


def _compile_value_matcher(rule: Any, path: str) -> Callable[[Any, bool], bool]:
    """A matcher of one entry of a pattern's value list: ``(value, present) -> bool``."""
    if isinstance(rule, dict):
        if len(rule) != 1:
            raise FilterPatternError(f"filter pattern at {path}: one operator per rule, got {sorted(rule)}")
        ((op, arg),) = rule.items()
        if op == "prefix" and isinstance(arg, str):
            return lambda v, present: present and isinstance(v, str) and v.startswith(arg)
        if op == "suffix" and isinstance(arg, str):
            return lambda v, present: present and isinstance(v, str) and v.endswith(arg)
        if op == "equals-ignore-case" and isinstance(arg, str):
            return lambda v, present: present and isinstance(v, str) and v.lower() == arg.lower()
        if op == "exists" and isinstance(arg, bool):
            return lambda _v, present: present is arg
        if op == "anything-but":
            excluded = arg if isinstance(arg, list) else [arg]
            if not all(isinstance(item, str | int | float | bool) for item in excluded):
                raise FilterPatternError(f"filter pattern at {path}: anything-but takes values only")
            return lambda v, present: present and v not in excluded
        raise FilterPatternError(
            f"filter pattern at {path}: operator {op!r} is not supported locally "
            f"(supported: exact values, {', '.join(_PATTERN_OPERATORS)})"
        )
    if rule is None or isinstance(rule, str | int | float | bool):
        return lambda v, present: present and v == rule and type(v) is type(rule)
    raise FilterPatternError(f"filter pattern at {path}: unsupported value {rule!r}")


@dataclass(frozen=True)
class EventPattern:
    """One Lambda filter pattern (the JSON string of ``FilterCriteria.Filters[].Pattern``)."""

    source: str
    _match: Callable[[Mapping[str, Any]], bool] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, pattern: str) -> EventPattern:
        try:
            tree = json.loads(pattern)
        except ValueError as exc:
            raise FilterPatternError(f"filter pattern is not JSON: {pattern!r}") from exc
        if not isinstance(tree, dict):
            raise FilterPatternError(f"filter pattern must be a JSON object: {pattern!r}")
        return cls(pattern, _compile_object(tree, "$"))

    def matches(self, record: Mapping[str, Any]) -> bool:
        return self._match(record)


def _compile_object(tree: Mapping[str, Any], path: str) -> Callable[[Mapping[str, Any]], bool]:
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for key, rule in tree.items():
        where = f"{path}.{key}"
        if isinstance(rule, dict):
            inner = _compile_object(rule, where)

            def nested(
                obj: Mapping[str, Any], k: str = key, m: Callable[[Mapping[str, Any]], bool] = inner
            ) -> bool:
                value = obj.get(k)
                return isinstance(value, Mapping) and m(value)

            checks.append(nested)
        elif isinstance(rule, list):
            matchers = [_compile_value_matcher(item, where) for item in rule]

            def check(obj: Mapping[str, Any], k: str = key, ms: Sequence[Any] = matchers) -> bool:
                present = k in obj
                value = obj.get(k)
                values = value if isinstance(value, list) and value else [value]
                return any(m(v, present) for m in ms for v in values)

            checks.append(check)
        else:
            raise FilterPatternError(f"filter pattern at {where}: values must be in a list, got {rule!r}")
    return lambda obj: all(check(obj) for check in checks)


# ---------------------------------------------------------------------------------------------
# Descriptions


@dataclass(frozen=True)
class Unsupported:
    """Something in the template the local platform does not emulate."""

    logical_id: str
    type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.type}): {self.reason}"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    """The Lambda handler string, ``<package>.<module>.<function>`` under ``functions/``."""
    runtime: str
    timeout_s: int
    memory_mb: int
    raw_environment: Mapping[str, Any]
    asset_path: Path | None
    """The code asset directory in the cloud assembly (``None`` when not found)."""
    function_name: str | None = None
    description: str = ""
    tracing: bool = False

    @property
    def package(self) -> str:
        return self.handler.split(".", 1)[0]

    @property
    def module(self) -> str:
        """The handler's module as imported in-process (``functions.telemetry.handler``)."""
        return "functions." + self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def source_dir(self) -> Path:
        return FUNCTIONS_DIR / self.package

    def environment(self, resolver: Resolver) -> dict[str, str]:
        """The function's environment variables with every reference resolved."""
        resolved: dict[str, str] = {}
        for name, value in self.raw_environment.items():
            result = resolver.resolve(value, where=f"{self.logical_id} environment {name}")
            resolved[name] = result if isinstance(result, str) else json.dumps(result)
        return resolved


@dataclass(frozen=True)
class EventSourceMappingSpec:
    logical_id: str
    function_id: str
    source_id: str
    source_kind: str
    """``sqs`` or ``dynamodb`` (a table's stream)."""
    batch_size: int
    batching_window_s: int
    report_batch_item_failures: bool
    filters: tuple[EventPattern, ...]
    enabled: bool = True
    bisect_on_error: bool = False
    max_retry_attempts: int | None = None
    """Stream retries of a failed batch; ``None``: until the records expire (AWS's -1)."""
    max_record_age_s: int | None = None
    on_failure_id: str | None = None
    """Logical id of the on-failure destination (an SQS queue or SNS topic) of a stream mapping."""
    starting_position: str | None = None
    max_concurrency: int | None = None

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether the mapping's filter criteria let ``record`` through (no filters: all)."""
        return not self.filters or any(pattern.matches(record) for pattern in self.filters)


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    queue_name: str | None
    fifo: bool
    visibility_timeout_s: int
    retention_s: int | None
    delay_s: int | None
    dlq_id: str | None
    max_receive_count: int | None
    encrypted: bool = False
    tags: tuple[tuple[str, str], ...] = ()
    """Plain-string tags (e.g. ``smartzone:queue``: operator tools find queues by them)."""


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    table_name: str | None
    attribute_definitions: tuple[Mapping[str, str], ...]
    key_schema: tuple[Mapping[str, str], ...]
    global_secondary_indexes: tuple[Mapping[str, Any], ...]
    local_secondary_indexes: tuple[Mapping[str, Any], ...]
    billing_mode: str
    stream_view_type: str | None
    ttl_attribute: str | None

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(index["IndexName"] for index in self.global_secondary_indexes)


@dataclass(frozen=True)
class TopicSpec:
    logical_id: str
    topic_name: str | None
    fifo: bool
    display_name: str | None


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    bucket_name: str | None
    versioned: bool


@dataclass(frozen=True)
class SecretSpec:
    logical_id: str
    name: str | None
    description: str
    secret_string: str | None
    generate: Mapping[str, Any] | None


@dataclass(frozen=True)
class DeliveryStreamSpec:
    logical_id: str
    name: str | None
    bucket_id: str
    prefix: str
    error_prefix: str
    compression: str
    buffer_interval_s: int
    buffer_size_mb: int


@dataclass(frozen=True)
class RuleAction:
    kind: str
    """``sqs``, ``firehose``, ``lambda``, ``sns`` (the action's key, lower case)."""
    target_id: str | None
    params: Mapping[str, Any]


@dataclass(frozen=True)
class TopicRuleSpec:
    logical_id: str
    rule_name: str | None
    sql: str
    sql_version: str
    enabled: bool
    actions: tuple[RuleAction, ...]
    error_action: RuleAction | None


@dataclass(frozen=True)
class ScheduleTarget:
    target_id: str
    function_id: str
    input: Any | None


@dataclass(frozen=True)
class ScheduleSpec:
    logical_id: str
    rule_name: str | None
    expression: str
    enabled: bool
    targets: tuple[ScheduleTarget, ...]

    @property
    def period_s(self) -> float | None:
        """The period of a ``rate(...)`` expression; ``None`` for ``cron(...)``."""
        return rate_seconds(self.expression)


@dataclass(frozen=True)
class AuthorizerSpec:
    logical_id: str
    name: str
    type: str
    """``COGNITO_USER_POOLS``, ``TOKEN`` or ``REQUEST``."""
    identity_source: str
    user_pool_ids: tuple[str, ...]
    function_id: str | None
    result_ttl_s: int


@dataclass(frozen=True)
class MethodSpec:
    logical_id: str
    path: str
    http_method: str
    authorization_type: str
    authorizer_id: str | None
    integration_type: str
    function_id: str | None
    request_parameters: Mapping[str, bool]
    api_key_required: bool = False
    """``ApiKeyRequired``: the cloud gateway refuses a request without a key of a usage plan; the
    local gateway does not check keys (see ``NOT_EMULATED["AWS::ApiGateway::ApiKey"]``)."""


@dataclass(frozen=True)
class RestApiSpec:
    logical_id: str
    name: str
    stage_name: str | None
    methods: tuple[MethodSpec, ...]
    authorizers: Mapping[str, AuthorizerSpec]
    binary_media_types: tuple[str, ...]

    def routes(self) -> list[tuple[str, str]]:
        return [(m.http_method, m.path) for m in self.methods]


@dataclass(frozen=True)
class ApiKeySpec:
    """An API Gateway API key: locally only an id (``Ref``), so that references to it resolve."""

    logical_id: str
    name: str | None


@dataclass(frozen=True)
class UserPoolSpec:
    logical_id: str
    groups: tuple[str, ...]
    client_ids: tuple[str, ...]
    custom_attributes: tuple[str, ...]


@dataclass
class TemplateDescription:
    stack_name: str
    resources: Mapping[str, Mapping[str, Any]]
    outputs: Mapping[str, Any]
    parameters: Mapping[str, str]
    region: str | None
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    event_source_mappings: list[EventSourceMappingSpec] = field(default_factory=list)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)
    topics: dict[str, TopicSpec] = field(default_factory=dict)
    buckets: dict[str, BucketSpec] = field(default_factory=dict)
    secrets: dict[str, SecretSpec] = field(default_factory=dict)
    delivery_streams: dict[str, DeliveryStreamSpec] = field(default_factory=dict)
    topic_rules: dict[str, TopicRuleSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    rest_apis: dict[str, RestApiSpec] = field(default_factory=dict)
    user_pools: dict[str, UserPoolSpec] = field(default_factory=dict)
    api_keys: dict[str, ApiKeySpec] = field(default_factory=dict)
    unsupported: list[Unsupported] = field(default_factory=list)

    def resource_type(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        return resource.get("Type") if resource else None

    def function_for_package(self, package: str) -> FunctionSpec:
        matches = [fn for fn in self.functions.values() if fn.package == package]
        if len(matches) != 1:
            raise TemplateError(f"expected one function of package {package!r}, got {len(matches)}")
        return matches[0]

    def topics_named_by(self, variable: str) -> list[str]:
        """The topics (logical ids) that functions' environment variable ``variable`` refers to."""
        found: list[str] = []
        for fn in self.functions.values():
            topic_id = _ref_id(fn.raw_environment.get(variable))
            if topic_id in self.topics and topic_id not in found:
                found.append(topic_id)
        return found

    def notifications_topic(self, variable: str = "NOTIFICATIONS_TOPIC_ARN") -> str:
        """The logical id of the notifications topic (the one the outbox publishes to): the topic
        the functions' ``NOTIFICATIONS_TOPIC_ARN`` refers to, else the only topic, else the one whose
        logical id starts with ``Notifications``. Other topics (the operators' alarm topic) are
        provisioned but have no local subscriber."""
        named = self.topics_named_by(variable)
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise TemplateError(f"{variable} refers to several topics: {named}")
        if len(self.topics) == 1:
            return next(iter(self.topics))
        prefixed = [t for t in self.topics if t.startswith("Notifications")]
        if len(prefixed) == 1:
            return prefixed[0]
        raise TemplateError(f"no notifications topic among {sorted(self.topics)} (no function names one)")

    def mappings_for(self, function_id: str) -> list[EventSourceMappingSpec]:
        return [m for m in self.event_source_mappings if m.function_id == function_id]

    def resolver(
        self,
        physical: Mapping[str, Physical],
        *,
        region: str | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> Resolver:
        chosen = region or self.region
        if not chosen:
            raise TemplateError("no region: pass region= (the template's assets name none)")
        return Resolver(
            physical,
            region=chosen,
            account_id=account_id,
            stack_name=self.stack_name,
            parameters=self.parameters,
            resource_types={k: v.get("Type", "") for k, v in self.resources.items()},
        )

    def resolve_outputs(self, resolver: Resolver) -> dict[str, str]:
        """The stack outputs that have a local value (the others are left out)."""
        values: dict[str, str] = {}
        for name, output in self.outputs.items():
            try:
                value = resolver.resolve(output.get("Value"), where=f"output {name}")
            except UnresolvedReference:
                continue
            values[name] = value if isinstance(value, str) else json.dumps(value)
        return values

    def unsupported_report(self) -> list[str]:
        """One line per unsupported resource type and reason (for the platform's start banner)."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for item in self.unsupported:
            grouped.setdefault((item.type, item.reason), []).append(item.logical_id)
        return [
            f"{kind} ×{len(ids)} ({', '.join(ids)}): {reason}"
            for (kind, reason), ids in sorted(grouped.items())
        ]


# ---------------------------------------------------------------------------------------------
# Reading


def rate_seconds(expression: str) -> float | None:
    match = re.fullmatch(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", expression.strip())
    if match is None:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[unit]


def _ref_id(value: Any) -> str | None:
    """The logical id of a ``Ref``/``Fn::GetAtt`` (``None`` for anything else)."""
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref" and isinstance(arg, str):
            return arg
        if fn == "Fn::GetAtt":
            return arg.split(".", 1)[0] if isinstance(arg, str) else str(arg[0])
    return None


def _get_att_name(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        return arg.split(".", 1)[1] if isinstance(arg, str) else str(arg[1])
    return None


def _plain(value: Any) -> str | None:
    return value if isinstance(value, str) else None


NOT_EMULATED: Mapping[str, str] = {
    "AWS::IAM::Role": "IAM is not enforced locally: handlers run with full access to the emulated services",
    "AWS::IAM::Policy": "IAM is not enforced locally: handlers run with full access to the emulated services",
    "AWS::IAM::ManagedPolicy": "IAM is not enforced locally",
    "AWS::KMS::Key": "no encryption at rest locally: the key is not created and SSE/KMS settings are ignored",
    "AWS::KMS::Alias": "no KMS locally",
    "AWS::Logs::LogGroup": "function and access logs go to the platform's console, not CloudWatch Logs",
    "AWS::Logs::LogStream": "function and access logs go to the platform's console, not CloudWatch Logs",
    "AWS::IoT::Policy": "the local MQTT broker does not authenticate devices with certificates: "
    "the IoT policy (client id = thing name, own topic only) is not enforced",
    "AWS::SQS::QueuePolicy": "resource policies (TLS only, service principals) are not enforced locally",
    "AWS::SNS::TopicPolicy": "resource policies (TLS only, service principals) are not enforced locally",
    "AWS::S3::BucketPolicy": "resource policies (TLS only, service principals) are not enforced locally",
    "AWS::Lambda::Permission": "invoke permissions are not enforced: the platform invokes handlers in-process",
    "AWS::Lambda::LayerVersion": "layers are not unpacked: handlers import the shared layer from "
    "layers/shared/python and third-party packages from the virtualenv",
    "AWS::ApiGateway::Account": "API Gateway's CloudWatch role: no execution logs locally",
    "AWS::ApiGateway::Deployment": "the local gateway serves the template's methods directly (no deployments)",
    "AWS::ApiGateway::GatewayResponse": "gateway responses are the local gateway's own (same error shape), "
    "not read from the template",
    "AWS::ApiGateway::RequestValidator": "request-parameter validation is not emulated by the local gateway",
    "AWS::Cognito::UserPool": "provisioned by infra/local/userpool.py (moto cognito-idp), not from the "
    "template; MFA, password policy and e-mail verification are not emulated",
    "AWS::Cognito::UserPoolClient": "provisioned by infra/local/userpool.py (moto cognito-idp)",
    "AWS::Cognito::UserPoolGroup": "provisioned by infra/local/userpool.py (moto cognito-idp)",
    "AWS::StepFunctions::StateMachine": "the population merge workflow (Distributed Map) is not run "
    "locally: `python -m tools.population_merge` runs the same engine on local files and "
    "`python -m tools.population_load` loads its output into the local table (docs/residents.md)",
    "AWS::Glue::Database": "no Glue catalogue locally: queries run on the embedded engine (DuckDB) over the "
    "same Parquet files, mirrored from the data-lake bucket (QUERY_ENGINE=duckdb)",
    "AWS::Athena::WorkGroup": "no Athena locally: the API runs data-lake queries on DuckDB (QUERY_ENGINE=duckdb); "
    "the Athena translation of each query is tested in tests/unit/test_datalake_query.py",
    "AWS::Lambda::EventInvokeConfig": "asynchronous-invocation retries and on-failure destinations are not emulated",
    "AWS::CloudWatch::Alarm": "alarms are not evaluated locally (no CloudWatch metrics: the functions' "
    "EMF metrics go to the console); the queues they watch are real, so tools/redrive.py works",
    "AWS::CloudWatch::Dashboard": "the operations dashboard is CloudWatch's; locally use the platform's "
    "own dashboard page",
    "AWS::SNS::Subscription": "e-mail subscriptions (ops_alarm_email) are not delivered locally",
    "AWS::ApiGateway::UsagePlan": "usage plans (per-department and per-vendor rate limits and quotas) "
    "are not enforced by the local gateway",
    "AWS::ApiGateway::ApiKey": "API keys are not checked by the local gateway: each key gets a local id "
    "(so DEPARTMENT_API_KEYS resolves), methods that require a key are served without one, and no "
    "apiKeyId reaches the function (its key-ownership check does not apply); keys only throttle, "
    "authentication is the ID token (or the webhook's HMAC signature) either way",
    "AWS::ApiGateway::UsagePlanKey": "usage plans are not enforced by the local gateway",
}
"""Resource types that are read (or knowingly skipped) but not emulated, with the reason."""

_HANDLED = frozenset(
    {
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::S3::Bucket",
        "AWS::SecretsManager::Secret",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::IoT::TopicRule",
        "AWS::Events::Rule",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Authorizer",
        "AWS::ApiGateway::Stage",
        "AWS::CDK::Metadata",
    }
)


class _Reader:
    def __init__(self, description: TemplateDescription, assets: Mapping[str, Path]) -> None:
        self.d = description
        self.assets = assets
        self.resources = description.resources

    def unsupported(self, logical_id: str, reason: str) -> None:
        self.d.unsupported.append(Unsupported(logical_id, self.d.resource_type(logical_id) or "?", reason))

    def read(self) -> None:
        readers: dict[str, Callable[[str, Mapping[str, Any]], None]] = {
            "AWS::Lambda::Function": self.function,
            "AWS::SQS::Queue": self.queue,
            "AWS::DynamoDB::Table": self.table,
            "AWS::SNS::Topic": self.topic,
            "AWS::S3::Bucket": self.bucket,
            "AWS::SecretsManager::Secret": self.secret,
            "AWS::KinesisFirehose::DeliveryStream": self.delivery_stream,
            "AWS::IoT::TopicRule": self.topic_rule,
            "AWS::Events::Rule": self.events_rule,
            "AWS::ApiGateway::RestApi": self.rest_api,
            "AWS::Cognito::UserPool": self.user_pool,
            "AWS::ApiGateway::ApiKey": self.api_key,
        }
        # Functions first: schedules, rules and APIs refer to them.
        ordered = sorted(
            self.resources.items(), key=lambda item: item[1].get("Type") != "AWS::Lambda::Function"
        )
        for logical_id, resource in ordered:
            kind = resource.get("Type", "")
            if "Condition" in resource:
                self.unsupported(logical_id, "conditional resources are not evaluated locally")
                continue
            properties = resource.get("Properties", {}) or {}
            if kind in readers:
                readers[kind](logical_id, properties)
            if kind in NOT_EMULATED:
                self.unsupported(logical_id, NOT_EMULATED[kind])
            elif kind not in _HANDLED:
                self.unsupported(logical_id, f"no local emulation for {kind}")
        # Mappings last: they refer to functions and sources read above.
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == "AWS::Lambda::EventSourceMapping" and "Condition" not in resource:
                self.event_source_mapping(logical_id, resource.get("Properties", {}) or {})

    # -- Lambda ------------------------------------------------------------------------------

    def function(self, logical_id: str, p: Mapping[str, Any]) -> None:
        handler = p.get("Handler")
        runtime = str(p.get("Runtime", ""))
        if not isinstance(handler, str) or not runtime.startswith("python"):
            self.unsupported(logical_id, f"only Python functions run locally (runtime {runtime or 'image'})")
            return
        code = p.get("Code", {}) or {}
        if "ZipFile" in code:
            self.unsupported(logical_id, "inline (ZipFile) code is not run locally")
            return
        asset_path = self._asset(code.get("S3Key"))
        spec = FunctionSpec(
            logical_id=logical_id,
            handler=handler,
            runtime=runtime,
            timeout_s=int(p.get("Timeout", 3)),
            memory_mb=int(p.get("MemorySize", 128)),
            raw_environment=dict((p.get("Environment") or {}).get("Variables") or {}),
            asset_path=asset_path,
            function_name=_plain(p.get("FunctionName")),
            description=str(p.get("Description", "")),
            tracing=(p.get("TracingConfig") or {}).get("Mode") == "Active",
        )
        if not (spec.source_dir / "__init__.py").is_file():
            self.unsupported(
                logical_id, f"handler {handler!r}: no package {spec.source_dir} in the repository"
            )
            return
        if asset_path is not None and asset_path.is_dir() and not (asset_path / spec.package).is_dir():
            raise TemplateError(
                f"{logical_id}: code asset {asset_path.name} does not contain package {spec.package!r} "
                f"of handler {handler!r}"
            )
        self.d.functions[logical_id] = spec
        if spec.tracing:
            self.unsupported(logical_id, "X-Ray tracing is not emulated (Powertools tracer disabled)")
        if p.get("VpcConfig"):
            self.unsupported(logical_id, "VPC configuration is ignored locally")

    def _asset(self, key: Any) -> Path | None:
        if not isinstance(key, str):
            return None
        return self.assets.get(key.split(".", 1)[0])

    def event_source_mapping(self, logical_id: str, p: Mapping[str, Any]) -> None:
        function_id = _ref_id(p.get("FunctionName"))
        source = p.get("EventSourceArn")
        source_id = _ref_id(source)
        if function_id not in self.d.functions:
            self.unsupported(
                logical_id, f"target function {function_id or p.get('FunctionName')!r} is not run locally"
            )
            return
        source_type = self.d.resource_type(source_id) if source_id else None
        attribute = _get_att_name(source)
        if source_type == "AWS::SQS::Queue":
            kind = "sqs"
        elif source_type == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            kind = "dynamodb"
        else:
            self.unsupported(
                logical_id,
                f"event source {source_type or source!r} is not emulated (SQS and DynamoDB streams are)",
            )
            return
        try:
            filters = tuple(
                EventPattern.parse(item["Pattern"])
                for item in ((p.get("FilterCriteria") or {}).get("Filters") or [])
            )
        except FilterPatternError as exc:
            self.unsupported(logical_id, str(exc))
            return
        retries = p.get("MaximumRetryAttempts")
        age = p.get("MaximumRecordAgeInSeconds")
        destination = ((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        on_failure_id = _ref_id(destination)
        if destination is not None and self.d.resource_type(on_failure_id or "") not in {
            "AWS::SQS::Queue",
            "AWS::SNS::Topic",
        }:
            self.unsupported(logical_id, f"on-failure destination {destination!r} is not emulated")
            on_failure_id = None
        self.d.event_source_mappings.append(
            EventSourceMappingSpec(
                logical_id=logical_id,
                function_id=str(function_id),
                source_id=str(source_id),
                source_kind=kind,
                batch_size=int(
                    p.get("BatchSize", SQS_DEFAULT_BATCH_SIZE if kind == "sqs" else STREAM_DEFAULT_BATCH_SIZE)
                ),
                batching_window_s=int(p.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures"
                in (p.get("FunctionResponseTypes") or []),
                filters=filters,
                enabled=bool(p.get("Enabled", True)),
                bisect_on_error=bool(p.get("BisectBatchOnFunctionError", False)),
                max_retry_attempts=None if retries in (None, -1) else int(retries),
                max_record_age_s=None if age in (None, -1) else int(age),
                on_failure_id=on_failure_id,
                starting_position=_plain(p.get("StartingPosition")),
                max_concurrency=(p.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            )
        )
        if int(p.get("ParallelizationFactor", 1)) > 1:
            self.unsupported(logical_id, "parallelization factor > 1: batches are processed one at a time")

    # -- data --------------------------------------------------------------------------------

    def queue(self, logical_id: str, p: Mapping[str, Any]) -> None:
        redrive = p.get("RedrivePolicy") or {}
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        self.d.queues[logical_id] = QueueSpec(
            logical_id=logical_id,
            queue_name=_plain(p.get("QueueName")),
            fifo=bool(p.get("FifoQueue", False)),
            visibility_timeout_s=int(p.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT_S)),
            retention_s=int(p["MessageRetentionPeriod"]) if "MessageRetentionPeriod" in p else None,
            delay_s=int(p["DelaySeconds"]) if "DelaySeconds" in p else None,
            dlq_id=_ref_id(redrive.get("deadLetterTargetArn")),
            max_receive_count=int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None,
            encrypted="KmsMasterKeyId" in p or bool(p.get("SqsManagedSseEnabled")),
            tags=tuple(
                (str(tag["Key"]), tag["Value"])
                for tag in p.get("Tags") or ()
                if isinstance(tag, dict) and isinstance(tag.get("Value"), str)
            ),
        )

    def table(self, logical_id: str, p: Mapping[str, Any]) -> None:
        stream = p.get("StreamSpecification") or {}
        ttl = p.get("TimeToLiveSpecification") or {}
        self.d.tables[logical_id] = TableSpec(
            logical_id=logical_id,
            table_name=_plain(p.get("TableName")),
            attribute_definitions=tuple(p.get("AttributeDefinitions") or ()),
            key_schema=tuple(p.get("KeySchema") or ()),
            global_secondary_indexes=tuple(p.get("GlobalSecondaryIndexes") or ()),
            local_secondary_indexes=tuple(p.get("LocalSecondaryIndexes") or ()),
            billing_mode=str(p.get("BillingMode", "PROVISIONED")),
            stream_view_type=stream.get("StreamViewType"),
            ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
        )
        if (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"):
            self.unsupported(
                logical_id, "point-in-time recovery is not emulated (the platform snapshots to .local/)"
            )
        if ttl.get("Enabled"):
            self.unsupported(logical_id, "TTL expiry is not emulated: expired items stay until deleted")

    def topic(self, logical_id: str, p: Mapping[str, Any]) -> None:
        self.d.topics[logical_id] = TopicSpec(
            logical_id=logical_id,
            topic_name=_plain(p.get("TopicName")),
            fifo=bool(p.get("FifoTopic", False)),
            display_name=_plain(p.get("DisplayName")),
        )
        if p.get("Subscription"):
            self.unsupported(logical_id, "inline subscriptions are not created locally")

    def bucket(self, logical_id: str, p: Mapping[str, Any]) -> None:
        self.d.buckets[logical_id] = BucketSpec(
            logical_id=logical_id,
            bucket_name=_plain(p.get("BucketName")),
            versioned=(p.get("VersioningConfiguration") or {}).get("Status") == "Enabled",
        )
        if p.get("NotificationConfiguration"):
            self.unsupported(logical_id, "bucket notifications are not emulated")
        if p.get("LoggingConfiguration"):
            self.unsupported(logical_id, "S3 server access logging is not emulated")
        if p.get("LifecycleConfiguration"):
            self.unsupported(logical_id, "lifecycle rules (expiry, Glacier) are not applied locally")

    def secret(self, logical_id: str, p: Mapping[str, Any]) -> None:
        self.d.secrets[logical_id] = SecretSpec(
            logical_id=logical_id,
            name=_plain(p.get("Name")),
            description=str(p.get("Description", "")),
            secret_string=_plain(p.get("SecretString")),
            generate=p.get("GenerateSecretString"),
        )

    def delivery_stream(self, logical_id: str, p: Mapping[str, Any]) -> None:
        destination = p.get("ExtendedS3DestinationConfiguration") or p.get("S3DestinationConfiguration")
        bucket_id = _ref_id((destination or {}).get("BucketARN"))
        if p.get("DeliveryStreamType", "DirectPut") != "DirectPut" or bucket_id not in self.d.buckets:
            self.unsupported(logical_id, "only DirectPut streams into a bucket of this stack are emulated")
            return
        assert destination is not None
        hints = destination.get("BufferingHints") or {}
        self.d.delivery_streams[logical_id] = DeliveryStreamSpec(
            logical_id=logical_id,
            name=_plain(p.get("DeliveryStreamName")),
            bucket_id=bucket_id,
            prefix=str(destination.get("Prefix", "")),
            error_prefix=str(destination.get("ErrorOutputPrefix", "")),
            compression=str(destination.get("CompressionFormat", "UNCOMPRESSED")),
            buffer_interval_s=int(hints.get("IntervalInSeconds", 300)),
            buffer_size_mb=int(hints.get("SizeInMBs", 5)),
        )
        if destination.get("ProcessingConfiguration", {}).get("Enabled"):
            self.unsupported(logical_id, "Firehose record processing (Lambda transforms) is not emulated")

    # -- events ------------------------------------------------------------------------------

    def _rule_action(self, logical_id: str, action: Mapping[str, Any]) -> RuleAction | None:
        ((kind, params),) = action.items()
        targets = {
            "Sqs": "QueueUrl",
            "Firehose": "DeliveryStreamName",
            "Lambda": "FunctionArn",
            "Sns": "TargetArn",
        }
        if kind not in targets:
            self.unsupported(logical_id, f"IoT rule action {kind} is not emulated")
            return None
        target_id = _ref_id(params.get(targets[kind]))
        return RuleAction(
            kind=kind.lower(),
            target_id=target_id,
            params={k: v for k, v in params.items() if k not in {targets[kind], "RoleArn"}},
        )

    def topic_rule(self, logical_id: str, p: Mapping[str, Any]) -> None:
        payload = p.get("TopicRulePayload") or {}
        actions = [self._rule_action(logical_id, a) for a in payload.get("Actions") or []]
        error = payload.get("ErrorAction")
        self.d.topic_rules[logical_id] = TopicRuleSpec(
            logical_id=logical_id,
            rule_name=_plain(p.get("RuleName")),
            sql=str(payload.get("Sql", "")),
            sql_version=str(payload.get("AwsIotSqlVersion", "2015-10-08")),
            enabled=not payload.get("RuleDisabled", False),
            actions=tuple(a for a in actions if a is not None),
            error_action=self._rule_action(logical_id, error) if error else None,
        )

    def events_rule(self, logical_id: str, p: Mapping[str, Any]) -> None:
        expression = p.get("ScheduleExpression")
        if not isinstance(expression, str):
            self.unsupported(logical_id, "event-pattern rules are not emulated (only schedules)")
            return
        targets: list[ScheduleTarget] = []
        for target in p.get("Targets") or []:
            function_id = _ref_id(target.get("Arn"))
            if function_id not in self.d.functions:
                self.unsupported(logical_id, f"schedule target {target.get('Id')} is not a local function")
                continue
            payload = target.get("Input")
            targets.append(
                ScheduleTarget(
                    target_id=str(target.get("Id", "")),
                    function_id=str(function_id),
                    input=json.loads(payload) if isinstance(payload, str) else None,
                )
            )
            if "InputTransformer" in target or "InputPath" in target:
                self.unsupported(logical_id, "schedule input transformers are not emulated")
        if rate_seconds(expression) is None:
            self.unsupported(
                logical_id, f"{expression}: cron schedules are not run locally (only rate schedules are)"
            )
        self.d.schedules[logical_id] = ScheduleSpec(
            logical_id=logical_id,
            rule_name=_plain(p.get("Name")),
            expression=expression,
            enabled=p.get("State", "ENABLED") == "ENABLED",
            targets=tuple(targets),
        )

    # -- API Gateway and Cognito -------------------------------------------------------------

    def rest_api(self, logical_id: str, p: Mapping[str, Any]) -> None:
        of_api = {
            lid: r
            for lid, r in self.resources.items()
            if _ref_id((r.get("Properties") or {}).get("RestApiId")) == logical_id
        }

        def path_of(resource_ref: Any) -> str:
            rid = _ref_id(resource_ref)
            if rid == logical_id:  # Fn::GetAtt [api, RootResourceId]
                return "/"
            parts: list[str] = []
            while rid is not None and rid != logical_id:
                resource = of_api.get(rid) or {}
                props = resource.get("Properties") or {}
                parts.append(str(props.get("PathPart")))
                rid = _ref_id(props.get("ParentId"))
            return "/" + "/".join(reversed(parts))

        authorizers: dict[str, AuthorizerSpec] = {}
        methods: list[MethodSpec] = []
        stage_name: str | None = None
        for lid, r in of_api.items():
            props = r.get("Properties") or {}
            kind = r.get("Type")
            if kind == "AWS::ApiGateway::Authorizer":
                authorizers[lid] = AuthorizerSpec(
                    logical_id=lid,
                    name=str(props.get("Name", lid)),
                    type=str(props.get("Type")),
                    identity_source=str(props.get("IdentitySource", "")),
                    user_pool_ids=tuple(
                        i for i in (_ref_id(a) for a in props.get("ProviderARNs") or []) if i is not None
                    ),
                    function_id=_function_in_uri(props.get("AuthorizerUri")),
                    result_ttl_s=int(props.get("AuthorizerResultTtlInSeconds", 300)),
                )
            elif kind == "AWS::ApiGateway::Stage":
                stage_name = _plain(props.get("StageName"))
                self.unsupported(lid, "stage access logs, throttling and tracing are not emulated")
        for lid, r in of_api.items():
            props = r.get("Properties") or {}
            if r.get("Type") != "AWS::ApiGateway::Method":
                continue
            integration = props.get("Integration") or {}
            methods.append(
                MethodSpec(
                    logical_id=lid,
                    path=path_of(props.get("ResourceId")),
                    http_method=str(props.get("HttpMethod")),
                    authorization_type=str(props.get("AuthorizationType", "NONE")),
                    authorizer_id=_ref_id(props.get("AuthorizerId")),
                    integration_type=str(integration.get("Type", "")),
                    function_id=_function_in_uri(integration.get("Uri")),
                    request_parameters=dict(props.get("RequestParameters") or {}),
                    api_key_required=bool(props.get("ApiKeyRequired", False)),
                )
            )
            if integration.get("Type") not in {"AWS_PROXY", "MOCK"}:
                self.unsupported(lid, f"integration type {integration.get('Type')} is not emulated")
        self.d.rest_apis[logical_id] = RestApiSpec(
            logical_id=logical_id,
            name=str(p.get("Name", logical_id)),
            stage_name=stage_name,
            methods=tuple(sorted(methods, key=lambda m: (m.path, m.http_method))),
            authorizers=authorizers,
            binary_media_types=tuple(p.get("BinaryMediaTypes") or ()),
        )

    def api_key(self, logical_id: str, p: Mapping[str, Any]) -> None:
        self.d.api_keys[logical_id] = ApiKeySpec(logical_id=logical_id, name=_plain(p.get("Name")))

    def user_pool(self, logical_id: str, p: Mapping[str, Any]) -> None:
        groups, clients = [], []
        for lid, r in self.resources.items():
            props = r.get("Properties") or {}
            if _ref_id(props.get("UserPoolId")) != logical_id:
                continue
            if r.get("Type") == "AWS::Cognito::UserPoolGroup":
                groups.append(str(props.get("GroupName", lid)))
            elif r.get("Type") == "AWS::Cognito::UserPoolClient":
                clients.append(lid)
        custom = tuple(
            f"custom:{a['Name']}" for a in p.get("Schema") or [] if "AttributeDataType" in a and "Name" in a
        )
        self.d.user_pools[logical_id] = UserPoolSpec(logical_id, tuple(groups), tuple(clients), custom)


def _function_in_uri(uri: Any) -> str | None:
    """The function logical id inside an ``arn:…:apigateway:…:lambda:path/…/functions/<arn>/invocations``."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Fn::GetAtt" in value and _get_att_name(value) == "Arn":
                found.append(str(_ref_id(value)))
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(uri)
    return found[0] if found else None


def _assets_of(template_path: Path) -> dict[str, Path]:
    """Asset hash → directory, from ``<stack>.assets.json`` next to the template."""
    manifest = template_path.with_name(template_path.name.replace(".template.json", ".assets.json"))
    if not manifest.is_file():
        return {}
    files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
    assets: dict[str, Path] = {}
    for asset_hash, entry in files.items():
        source = Path(str((entry.get("source") or {}).get("path", "")))
        assets[asset_hash] = source if source.is_absolute() else template_path.parent / source
    return assets


def _region_of(template_path: Path) -> str | None:
    manifest = template_path.with_name(template_path.name.replace(".template.json", ".assets.json"))
    if not manifest.is_file():
        return None
    for entry in json.loads(manifest.read_text(encoding="utf-8")).get("files", {}).values():
        for destination in (entry.get("destinations") or {}).values():
            region = destination.get("region")
            if isinstance(region, str) and "${" not in region:
                return region
    return None


def describe_template(
    template: Mapping[str, Any],
    *,
    stack_name: str = "SmartZone",
    assets: Mapping[str, Path] | None = None,
    region: str | None = None,
    parameters: Mapping[str, str] | None = None,
) -> TemplateDescription:
    """The description of a template already loaded as JSON."""
    defaults = {
        name: str(spec["Default"])
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" in spec
    }
    description = TemplateDescription(
        stack_name=stack_name,
        resources=dict(template.get("Resources") or {}),
        outputs=dict(template.get("Outputs") or {}),
        parameters={**defaults, **(parameters or {})},
        region=region,
    )
    _Reader(description, dict(assets or {})).read()
    return description


def read_template(path: Path | str, *, parameters: Mapping[str, str] | None = None) -> TemplateDescription:
    """Read ``cdk.out/<stack>.template.json`` (and its assets manifest, when present)."""
    template_path = Path(path)
    if not template_path.is_file():
        raise TemplateError(f"{template_path}: no synthesized template (run `make synth` first)")
    template = json.loads(template_path.read_text(encoding="utf-8"))
    return describe_template(
        template,
        stack_name=template_path.name.removesuffix(".template.json"),
        assets=_assets_of(template_path),
        region=_region_of(template_path),
        parameters=parameters,
    )


def logical_ids(items: Iterable[Any]) -> list[str]:
    return [item.logical_id for item in items]
