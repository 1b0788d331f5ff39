"""This process's tracer: OTLP/HTTP export when the standard OpenTelemetry variables ask for it.

Tracing is on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
is set (and ``OTEL_SDK_DISABLED`` is not true, and ``OTEL_TRACES_EXPORTER`` is not ``none``).
Otherwise no provider is made: :func:`tracer` returns None and the calls create nothing at all.
The exporter reads the rest itself (headers, timeout, compression, certificates), the resource
reads ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``. Spans leave through a
``BatchSpanProcessor``: its own thread exports them, never the event loop.

No Django here: the worker's name is passed in by the caller.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

logger = logging.getLogger(__name__)

#: The instrumentation scope of every span of ours.
SCOPE = "assistant.telemetry"
#: ``service.name`` unless ``OTEL_SERVICE_NAME`` (or the resource attributes) say otherwise.
DEFAULT_SERVICE_NAME = "voice-assistant"
#: The export timeout when the environment sets none: a hanging collector must not hold a
#: worker's exit past Daphne's close timeout (10 s); the SDK's own default is 10 s.
DEFAULT_EXPORT_TIMEOUT_SECONDS = 5.0
#: What a draining worker gives the queued spans to leave.
FLUSH_MILLIS = 3000

_provider: TracerProvider | None = None


def tracing_requested(environ: Mapping[str, str]) -> bool:
    """True when the standard variables ask for traces to be exported over OTLP."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporters == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def tracing_setup(
    *, worker: str = "", environ: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """Make this process's provider if the environment asks for traces (once; None if not).

    Args:
        worker: this worker's name (``service.instance.id`` unless the resource names one).
        environ: the environment that decides whether to trace (default ``os.environ``);
            the SDK reads the rest of its variables from ``os.environ`` itself.
    """
    global _provider
    environ = os.environ if environ is None else environ
    if _provider is not None or not tracing_requested(environ):
        return _provider
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME from os.environ (as
    # the exporter reads its own variables); what it is given wins over them, so only what
    # they leave out is given.
    named = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    attributes: dict[str, str] = {}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in named:
        attributes["service.name"] = DEFAULT_SERVICE_NAME
    if worker and "service.instance.id=" not in named:
        attributes["service.instance.id"] = worker
    resource = Resource.create(attributes)
    timeouts = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
    timeout_set = any(os.environ.get(name) for name in timeouts)
    exporter = OTLPSpanExporter(timeout=None if timeout_set else DEFAULT_EXPORT_TIMEOUT_SECONDS)
    # shutdown_on_exit: at interpreter exit the provider flushes what is queued (bounded by the
    # export timeout above).
    provider = TracerProvider(resource=resource, shutdown_on_exit=True)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    logger.info("tracing: exporting spans over OTLP/HTTP")
    return provider


def tracer() -> trace.Tracer | None:
    """Our tracer, or None when tracing is off (then nothing is traced, at no cost)."""
    if _provider is None:
        return None
    return _provider.get_tracer(SCOPE)


async def tracing_flush() -> None:
    """Push the queued spans out, off the event loop (a draining worker's last step)."""
    provider = _provider
    if provider is not None:
        await asyncio.to_thread(provider.force_flush, FLUSH_MILLIS)


def tracing_reset() -> None:
    """Shut the provider down and forget it (tests; a process exit does this by itself)."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()
