//! The CloudWatch metrics a service emits (as Embedded Metric Format in its log stream) and that
//! the generated dashboard and alarms read: one list, so the two cannot drift apart.

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "svcgen";

/// The dimension naming the service: `OTEL_SERVICE_NAME`, which the task definition sets to the
/// deployed service's name (`<service>` or `<service>-<environment>`).
pub const SERVICE: &str = "Service";
/// The dimension naming the RPC: `package.Service/Method`.
pub const RPC: &str = "Rpc";
/// The dimension naming a gRPC status code as tonic spells it (`Ok`, `NotFound`, …).
pub const CODE: &str = "Code";
/// The dimension naming a DynamoDB table (its physical name).
pub const TABLE: &str = "Table";
/// The dimension naming a DynamoDB operation (`GetItem`, `Query`, …).
pub const OPERATION: &str = "Operation";

/// The CloudWatch unit of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// `Count`.
    Count,
    /// `Milliseconds`.
    Milliseconds,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric: its name, unit and the dimension sets it is published under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// The metric's name.
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// The dimension sets it is published under (each one a CloudWatch metric).
    pub dimensions: &'static [&'static [&'static str]],
}

const BY_RPC: &[&[&str]] = &[&[SERVICE, RPC], &[SERVICE]];
const BY_OPERATION: &[&[&str]] = &[&[SERVICE, TABLE, OPERATION], &[SERVICE]];

/// Calls answered, per RPC and for the service (every code).
pub const CALLS: Metric = Metric {
    name: "Calls",
    unit: Unit::Count,
    dimensions: BY_RPC,
};
/// Calls answered, per RPC and gRPC code.
pub const CALLS_BY_CODE: Metric = Metric {
    name: "CallsByCode",
    unit: Unit::Count,
    dimensions: &[&[SERVICE, RPC, CODE]],
};
/// Calls answered with a code that means the server failed (see [`server_error`]).
pub const SERVER_ERRORS: Metric = Metric {
    name: "ServerErrors",
    unit: Unit::Count,
    dimensions: BY_RPC,
};
/// Calls answered with a code that means the request was refused (see [`server_error`]).
pub const CLIENT_ERRORS: Metric = Metric {
    name: "ClientErrors",
    unit: Unit::Count,
    dimensions: BY_RPC,
};
/// Time from a call's request headers to the end of its response, as a distribution.
pub const LATENCY: Metric = Metric {
    name: "Latency",
    unit: Unit::Milliseconds,
    dimensions: BY_RPC,
};
/// Requests to DynamoDB (or the embedded store), per table and operation.
pub const STORE_CALLS: Metric = Metric {
    name: "StoreCalls",
    unit: Unit::Count,
    dimensions: BY_OPERATION,
};
/// Store requests that failed, conditional-check failures (a created item that exists, a stale
/// version) not counted.
pub const STORE_ERRORS: Metric = Metric {
    name: "StoreErrors",
    unit: Unit::Count,
    dimensions: BY_OPERATION,
};
/// Store requests DynamoDB refused for throughput (after the SDK's retries).
pub const STORE_THROTTLES: Metric = Metric {
    name: "StoreThrottles",
    unit: Unit::Count,
    dimensions: BY_OPERATION,
};
/// Attempts the AWS SDK repeated (throttling, transient failures).
pub const STORE_RETRIES: Metric = Metric {
    name: "StoreRetries",
    unit: Unit::Count,
    dimensions: BY_OPERATION,
};
/// Duration of one store request, retries included, as a distribution.
pub const STORE_LATENCY: Metric = Metric {
    name: "StoreLatency",
    unit: Unit::Milliseconds,
    dimensions: BY_OPERATION,
};
/// Read capacity units consumed (DynamoDB's `ConsumedCapacity`; estimated by DynamoDB's
/// rounding rules from item sizes on the embedded store).
pub const READ_CAPACITY: Metric = Metric {
    name: "ConsumedReadCapacity",
    unit: Unit::Count,
    dimensions: BY_OPERATION,
};
/// Write capacity units consumed, as [`READ_CAPACITY`].
pub const WRITE_CAPACITY: Metric = Metric {
    name: "ConsumedWriteCapacity",
    unit: Unit::Count,
    dimensions: BY_OPERATION,
};
/// The most calls in progress at once during the interval.
pub const CALLS_IN_FLIGHT: Metric = Metric {
    name: "CallsInFlight",
    unit: Unit::Count,
    dimensions: &[&[SERVICE]],
};
/// The most client connections open at once during the interval.
pub const CONNECTIONS: Metric = Metric {
    name: "Connections",
    unit: Unit::Count,
    dimensions: &[&[SERVICE]],
};

/// Every metric, in the order a service emits them.
pub const ALL: &[Metric] = &[
    CALLS,
    CALLS_BY_CODE,
    SERVER_ERRORS,
    CLIENT_ERRORS,
    LATENCY,
    STORE_CALLS,
    STORE_ERRORS,
    STORE_THROTTLES,
    STORE_RETRIES,
    STORE_LATENCY,
    READ_CAPACITY,
    WRITE_CAPACITY,
    CALLS_IN_FLIGHT,
    CONNECTIONS,
];

/// Whether gRPC code `code` (its number) means the server failed — UNKNOWN, DEADLINE_EXCEEDED,
/// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS — rather than refusing the request (`Some(false)`,
/// every other code but OK) or succeeding (`None`). The error-rate alarm counts the first kind.
pub fn server_error(code: i32) -> Option<bool> {
    match code {
        0 => None,
        2 | 4 | 12 | 13 | 14 | 15 => Some(true),
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_named_once_and_published_by_service() {
        for (i, metric) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|m| m.name != metric.name));
            assert!(metric.dimensions.iter().all(|set| set[0] == SERVICE));
        }
        assert_eq!(server_error(0), None);
        assert_eq!(server_error(13), Some(true));
        assert_eq!(server_error(5), Some(false));
    }
}
