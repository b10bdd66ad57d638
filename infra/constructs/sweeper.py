"""SLA and offline sweeps: an EventBridge schedule runs the sweeper function every few minutes.

The sweeper (``functions/sweeper``) finds overdue open orders through ``gsi4`` (next SLA
deadline) and escalates them; finds devices that have been silent too long through ``gsi3``
(last heartbeat per grid) and raises or clears ``offline`` alarms, grouping many devices of one
area into one incident order; and reads grids and open orders through ``gsi2``. Every write is
conditional, so two overlapping runs cannot escalate an order twice.

Its role may Query the three indexes and the base table, read and (conditionally) write items:
no Scan, no DeleteItem, no BatchWriteItem. EventBridge invokes it asynchronously; a failed run
is retried twice by Lambda and, failing that, simply redone by the next scheduled run (the
schedule is the retry), so no dead-letter queue is kept for it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.functions import FunctionSettings, SmartZoneFunction
from infra.constructs.storage import TABLE_KEY_ACTIONS
from smartzone.repositories.keys import GSI2, GSI3, GSI4

SWEEPER_INDEXES = (GSI2, GSI3, GSI4)
SWEEPER_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
]
"""TransactWriteItems has no IAM action of its own: its parts' Put/Update/ConditionCheckItem apply."""
MAX_SWEEP_MINUTES = 60


class Sweeper(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        table: dynamodb.ITable,
        functions: FunctionSettings,
        sweep_minutes: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= sweep_minutes <= MAX_SWEEP_MINUTES:
            raise ValueError(f"sweep_minutes must be between 1 and {MAX_SWEEP_MINUTES}, got {sweep_minutes}")
        # A run must end before the next one starts (overlaps are safe, but wasteful).
        timeout = cdk.Duration.seconds(min(300, 60 * sweep_minutes - 10))
        self.function = SmartZoneFunction(
            self,
            "Sweeper",
            package="sweeper",
            description="SLA sweeper: escalates overdue orders, raises and clears offline alarms",
            settings=functions,
            timeout=timeout,
            memory_size=512,
            environment={"TABLE_NAME": table.table_name},
        )
        fn = self.function.function
        iam.Grant.add_to_principal(grantee=fn, actions=SWEEPER_TABLE_ACTIONS, resource_arns=[table.table_arn])
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=["dynamodb:Query"],
            resource_arns=[f"{table.table_arn}/index/{name}" for name in SWEEPER_INDEXES],
        )
        key.grant(fn, *TABLE_KEY_ACTIONS)

        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"Runs the SmartZone sweeper every {sweep_minutes} minute(s)",
            schedule=events.Schedule.rate(cdk.Duration.minutes(sweep_minutes)),
            targets=[
                targets.LambdaFunction(
                    fn,
                    retry_attempts=2,
                    max_event_age=cdk.Duration.minutes(sweep_minutes),
                )
            ],
        )
