"""Tracing is on only when the standard OpenTelemetry variables ask for an OTLP export."""

from __future__ import annotations

import pytest

from assistant.telemetry import tracing


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "voice"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_requested_only_by_an_otlp_endpoint(environ, wanted) -> None:
    assert tracing.tracing_requested(environ) is wanted


def test_unset_there_is_no_provider_and_no_tracer() -> None:
    tracing.tracing_reset()
    assert tracing.tracing_setup(worker="w", environ={}) is None
    assert tracing.tracer() is None


def test_set_the_provider_names_the_service_and_the_worker(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    try:
        provider = tracing.tracing_setup(worker="web-1", environ=environ)
        assert provider is not None
        assert tracing.tracing_setup(worker="other", environ=environ) is provider  # once
        attributes = provider.resource.attributes
        assert attributes["service.name"] == "voice-assistant"
        assert attributes["service.instance.id"] == "web-1"
        assert attributes["deployment.environment"] == "test"
        assert tracing.tracer() is not None
    finally:
        tracing.tracing_reset()
    assert tracing.tracer() is None


def test_the_service_name_from_the_environment_wins(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "voice-eu")
    try:
        provider = tracing.tracing_setup(
            worker="", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
        )
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "voice-eu"
        assert provider.resource.attributes["service.instance.id"]  # the SDK's own, unnamed
    finally:
        tracing.tracing_reset()
