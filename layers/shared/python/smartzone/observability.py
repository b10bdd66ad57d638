"""One place for Powertools Logger, Metrics and Tracer (structured JSON logs, EMF metrics)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "smartzone"
NAMESPACE = "SmartZone"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
