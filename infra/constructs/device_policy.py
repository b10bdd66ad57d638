"""The IoT policy attached to every device certificate.

A device may connect only with its own thing name as MQTT client id, and only while its
certificate is attached to that thing; it may publish only to its own telemetry topic. The ARNs
are built from the stack's partition, region and account (``${AWS::Partition}`` etc.), so the
same policy works in ``aws`` and ``aws-cn``. ``${iot:Connection.Thing.ThingName}`` is an IoT
policy variable, resolved by IoT Core per connection (not by CloudFormation).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iot as iot
from constructs import Construct

THING_NAME = "${iot:Connection.Thing.ThingName}"
TELEMETRY_TOPIC = f"smartzone/manhole/{THING_NAME}/telemetry"


class DevicePolicy(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        def iot_arn(resource: str, name: str) -> str:
            return stack.format_arn(service="iot", resource=resource, resource_name=name)

        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ConnectAsItself",
                    "Effect": "Allow",
                    "Action": "iot:Connect",
                    "Resource": iot_arn("client", THING_NAME),
                    "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                },
                {
                    "Sid": "PublishOwnTelemetry",
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": iot_arn("topic", TELEMETRY_TOPIC),
                },
            ],
        }
        self.policy = iot.CfnPolicy(self, "Policy", policy_document=document)
        self.policy_name = self.policy.ref
