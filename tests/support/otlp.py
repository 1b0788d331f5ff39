"""A real OTLP/HTTP trace receiver on 127.0.0.1: decodes each ``ExportTraceServiceRequest``.

What a collector does with the exporter's requests, minus the forwarding: the test (or the
bench, as a collector stub) reads the spans back, with their resource's attributes.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def any_value(value: AnyValue) -> Any:
    """A protobuf ``AnyValue`` as a plain Python value (arrays as tuples)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind is None:
        return None
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """``repeated KeyValue`` as a dict."""
    return {pair.key: any_value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, ids in hex (as the logs show them)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: tuple[str, ...]
    status_code: int
    resource: dict[str, Any]
    scope: str


class OtlpReceiver:
    """The receiver's state: every span received, and how many requests brought them.

    Args:
        keep: keep the spans (a test reads them); False: only count them (a long bench).
    """

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.spans: list[ReceivedSpan] = []
        self.span_count = 0
        self.requests = 0
        self.port = 0
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set to (the exporter adds ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.port}"

    def received(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes=attributes(span.attributes),
                            events=tuple(event.name for event in span.events),
                            status_code=span.status.code,
                            resource=resource,
                            scope=scope_spans.scope.name,
                        )
                    )
        with self._lock:
            self.requests += 1
            self.span_count += len(spans)
            if self.keep:
                self.spans.extend(spans)

    def snapshot(self) -> list[ReceivedSpan]:
        """The spans received so far."""
        with self._lock:
            return list(self.spans)

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> list[ReceivedSpan]:
        """Wait until ``predicate(spans)`` is true; returns the spans then."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.snapshot()
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({span.name for span in spans})
                msg = f"timed out waiting for spans; received {len(spans)}: {names}"
                raise TimeoutError(msg)
            time.sleep(0.1)


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            try:
                receiver.received(body)
            except Exception:  # a body that does not decode is the exporter's bug: say 400
                self.send_error(400)
                return
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    return Handler


@contextmanager
def otlp_receiver(port: int = 0, *, keep: bool = True) -> Iterator[OtlpReceiver]:
    """A receiver listening on 127.0.0.1 (``port``, or a free one) while the block runs."""
    receiver = OtlpReceiver(keep=keep)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="otlp receiver")
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
