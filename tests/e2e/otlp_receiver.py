"""A minimal OpenTelemetry collector for the end-to-end tests: a grpcio server on loopback that
answers OTLP/gRPC's TraceService/Export and MetricsService/Export (the messages and services of
the `opentelemetry-proto` package), keeps every request it receives, and reads them back as
flat records: spans with their resource's attributes, and metric data points."""

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE


def value(any_value):
    """An OTLP AnyValue as Python: str, bool, int, float, bytes, list or dict (None when empty)."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    return getattr(any_value, kind)


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def hashable(attrs):
    """A key for an attribute set (lists become tuples)."""
    def freeze(v):
        if isinstance(v, list):
            return tuple(freeze(x) for x in v)
        if isinstance(v, dict):
            return tuple(sorted((k, freeze(x)) for k, x in v.items()))
        return v

    return frozenset((k, freeze(v)) for k, v in attrs.items())


@dataclass
class Span:
    name: str
    kind: str  # SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ...
    trace_id: str  # hex
    span_id: str  # hex
    parent_span_id: str  # hex, "" for a root span
    attributes: dict
    resource: dict
    scope: str
    status: str  # STATUS_CODE_UNSET, STATUS_CODE_OK, STATUS_CODE_ERROR
    status_message: str
    start_ns: int
    end_ns: int


@dataclass
class Point:
    metric: str
    unit: str
    type: str  # gauge, sum, histogram, exponential_histogram, summary
    temporality: int  # metrics_pb2.AGGREGATION_TEMPORALITY_*; 0 for gauges and summaries
    monotonic: bool  # sums only
    attributes: dict
    resource: dict
    time_ns: int
    arrival: int  # the number of the request that carried it, in the order received
    value: object = None  # a number point's as_int or as_double
    value_type: str = ""  # "as_int" or "as_double" for number points
    count: int = 0  # histograms
    sum: float = 0.0  # histograms
    proto: object = field(default=None, repr=False)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver):
        self.receiver = receiver

    def Export(self, request, context):
        self.receiver._keep("traces", request, context)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver):
        self.receiver = receiver

    def Export(self, request, context):
        self.receiver._keep("metrics", request, context)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Receiver:
    """An OTLP/gRPC receiver on `host:port` (a free loopback port by default). Use as a context
    manager, or start() and stop(); `endpoint` is the value for OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.port = port
        self.endpoint = None
        self._lock = threading.Lock()
        self._received = []  # (signal, request, metadata)
        self._server = None

    def start(self):
        # Without SO_REUSEPORT: a port another process holds is refused, not shared.
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self), server)
        # Raises RuntimeError when the address cannot be bound.
        port = server.add_insecure_port(f"{self.host}:{self.port}")
        server.start()
        self._server = server
        self.port = port
        self.endpoint = f"http://{self.host}:{port}"
        return self

    def stop(self):
        if self._server is not None:
            self._server.stop(grace=None).wait(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _keep(self, signal, request, context):
        copy = type(request)()
        copy.CopyFrom(request)
        metadata = dict(context.invocation_metadata())
        with self._lock:
            self._received.append((signal, copy, metadata))

    # Reading back what was received: every method returns a snapshot.

    def requests(self, signal=None):
        """The requests received, oldest first: all, or those of "traces" or "metrics"."""
        with self._lock:
            return [r for s, r, _ in self._received if signal in (None, s)]

    def spans(self, **filters):
        """Every span received, flattened; with `filters` (e.g. kind="SPAN_KIND_SERVER"), those
        whose fields equal them."""
        spans = []
        for request in self.requests("traces"):
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        spans.append(Span(
                            name=s.name,
                            kind=trace_pb2.Span.SpanKind.Name(s.kind),
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            attributes=attributes(s.attributes),
                            resource=resource,
                            scope=scope_spans.scope.name,
                            status=trace_pb2.Status.StatusCode.Name(s.status.code),
                            status_message=s.status.message,
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                        ))
        return [s for s in spans if all(getattr(s, k) == v for k, v in filters.items())]

    def points(self, metric=None):
        """Every metric data point received (of `metric` only, when given), in arrival order."""
        points = []
        for arrival, request in enumerate(self.requests("metrics")):
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    for m in scope_metrics.metrics:
                        if metric is not None and m.name != metric:
                            continue
                        kind = m.WhichOneof("data")
                        data = getattr(m, kind)
                        temporality = getattr(data, "aggregation_temporality", 0)
                        monotonic = getattr(data, "is_monotonic", False)
                        for p in data.data_points:
                            point = Point(
                                metric=m.name, unit=m.unit, type=kind, temporality=temporality,
                                monotonic=monotonic, attributes=attributes(p.attributes),
                                resource=resource, time_ns=p.time_unix_nano, arrival=arrival, proto=p,
                            )
                            if kind in ("gauge", "sum"):
                                point.value_type = p.WhichOneof("value") or ""
                                point.value = getattr(p, point.value_type) if point.value_type else None
                            elif kind in ("histogram", "exponential_histogram", "summary"):
                                point.count, point.sum = p.count, p.sum
                            points.append(point)
        return points

    def last_points(self, metric, **attrs):
        """The latest point of `metric` per attribute set (with cumulative temporality, the
        totals), of the sets that include `attrs`."""
        latest = {}
        for point in self.points(metric):
            if any(point.attributes.get(k) != v for k, v in attrs.items()):
                continue
            key = hashable(point.attributes)
            seen = latest.get(key)
            if seen is None or (point.time_ns, point.arrival) >= (seen.time_ns, seen.arrival):
                latest[key] = point
        return list(latest.values())

