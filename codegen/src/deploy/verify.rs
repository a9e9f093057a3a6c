//! Step 10 and `svcgen verify`: calls the service through the load balancer as a client
//! would — TLS to `[deploy] domain` (the name the listener's certificate covers, verified
//! against the system's roots or `SSL_CERT_FILE`), gRPC health `Check`, then the first list RPC
//! with the fields its key needs filled in. Any failure is the deployment's.

use std::time::Duration;

use prost::Message as _;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::Project;
use crate::model::Operation;

/// The value svcgen fills into the string fields of the list request's key.
const PROBE_VALUE: &str = "svcgen-verify";

/// How long the connection and each call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A list RPC with a request svcgen can send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ListCall {
    /// `/package.Service/Method`.
    pub(super) path: String,
    /// The request, encoded.
    pub(super) request: Vec<u8>,
    /// The request as JSON, for `buf curl`.
    pub(super) json: String,
}

/// The first list RPC of the project, with every field of its partition key and every
/// `required` field set (strings to `svcgen-verify`, numbers to 1, enums to their first
/// defined non-zero value, booleans true).
pub(super) fn list_call(project: &Project) -> Option<ListCall> {
    let model = &project.model;
    let (service, method, entity, index) = model.services.iter().find_map(|service| {
        service
            .methods
            .iter()
            .find_map(|method| match &method.operation {
                Operation::List { entity, index, .. } => Some((service, method, *entity, index)),
                _ => None,
            })
    })?;
    let descriptor = project
        .compiled
        .pool
        .get_message_by_name(&method.input_name)?;
    let mut needed: Vec<String> = model
        .entity(entity)
        .partition_fields(index.as_deref())
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(validated) = model.validated(&method.input_name) {
        needed.extend(
            validated
                .fields
                .iter()
                .filter(|f| f.rules.required)
                .map(|f| f.name.clone()),
        );
    }
    let (message, json) = filled(&descriptor, &needed);
    Some(ListCall {
        path: format!("/{}/{}", service.full_name, method.name),
        request: message.encode_to_vec(),
        json,
    })
}

/// A message of `descriptor` with the fields named in `needed` set, and the same as JSON.
fn filled(descriptor: &MessageDescriptor, needed: &[String]) -> (DynamicMessage, String) {
    let mut message = DynamicMessage::new(descriptor.clone());
    let mut json = serde_json::Map::new();
    for field in descriptor
        .fields()
        .filter(|f| needed.iter().any(|n| n == f.name()))
    {
        if field.is_list() || field.is_map() {
            continue;
        }
        let (value, as_json) = match field.kind() {
            Kind::String => (Value::String(PROBE_VALUE.into()), PROBE_VALUE.into()),
            Kind::Bool => (Value::Bool(true), true.into()),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => (Value::I32(1), 1.into()),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => (Value::I64(1), "1".into()),
            Kind::Uint32 | Kind::Fixed32 => (Value::U32(1), 1.into()),
            Kind::Uint64 | Kind::Fixed64 => (Value::U64(1), "1".into()),
            Kind::Float => (Value::F32(1.0), 1.into()),
            Kind::Double => (Value::F64(1.0), 1.into()),
            Kind::Bytes => (
                Value::Bytes(PROBE_VALUE.as_bytes().to_vec().into()),
                "c3ZjZ2VuLXZlcmlmeQ==".into(),
            ),
            Kind::Enum(e) => match e.values().find(|v| v.number() != 0) {
                Some(v) => (Value::EnumNumber(v.number()), v.name().into()),
                None => continue,
            },
            Kind::Message(m) => (
                Value::Message(DynamicMessage::new(m)),
                serde_json::Value::Object(serde_json::Map::new()),
            ),
        };
        message.set_field(&field, value);
        json.insert(field.json_name().to_owned(), as_json);
    }
    (message, serde_json::Value::Object(json).to_string())
}

/// The `buf curl` command that sends `list` (the list RPC verification calls) to `host`, with
/// the project's protos as the schema (reflection is not routed through the load balancer).
pub(super) fn command(
    dir: &std::path::Path,
    config: &crate::config::Config,
    host: &str,
    list: Option<&ListCall>,
) -> String {
    let proto_root = config.proto_root(dir);
    let schema = std::fs::canonicalize(&proto_root).unwrap_or(proto_root);
    match list {
        Some(list) => format!(
            "buf curl --protocol grpc --schema {} --data '{}' https://{host}{}",
            schema.display(),
            list.json,
            list.path
        ),
        None => format!(
            "buf curl --protocol grpc --schema {} https://{host}/<package.Service>/<Method>",
            schema.display()
        ),
    }
}

/// Why the service could not be called, or what it answered.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No connection (DNS, TCP, TLS: e.g. a certificate that does not cover the domain).
    #[error("cannot connect to {url}: {}", chain(.error.as_ref()))]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The health check failed or did not answer SERVING.
    #[error("health Check through {url} answered {answer}")]
    Health {
        /// The URL.
        url: String,
        /// The status or the serving status.
        answer: String,
    },
    /// The list RPC failed.
    #[error("{path} through {url} answered {code:?}: {message}")]
    Call {
        /// The URL.
        url: String,
        /// The RPC.
        path: String,
        /// Its status.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
}

/// An error with its sources: tonic's transport errors say little at the top.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What the calls through the load balancer answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// `https://DOMAIN`.
    pub url: String,
    /// The RPC called after the health check, if the service has a list RPC.
    pub rpc: Option<String>,
    /// The `buf curl` command that sends the same call.
    pub command: String,
}

/// Calls the service at `https://DOMAIN` (connecting to `address`, `HOST:PORT`, when given:
/// before DNS points the domain at the load balancer): health `Check`, then `list`.
pub(super) async fn verify(
    domain: &str,
    address: Option<&str>,
    list: Option<&ListCall>,
    command: String,
) -> Result<Verified, VerifyError> {
    let url = format!("https://{domain}");
    let connect_error = |error: tonic::transport::Error| VerifyError::Connect {
        url: url.clone(),
        error: Box::new(error),
    };
    let target = format!("https://{}", address.unwrap_or(domain));
    let origin = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| VerifyError::Connect {
            url: url.clone(),
            error: Box::new(e),
        })?;
    let tls = ClientTlsConfig::new()
        .domain_name(domain)
        .with_native_roots();
    let channel = Endpoint::from_shared(target)
        .map_err(connect_error)?
        .origin(origin)
        .tls_config(tls)
        .map_err(connect_error)?
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .connect()
        .await
        .map_err(connect_error)?;
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| VerifyError::Health {
            url: url.clone(),
            answer: format!("{:?}: {}", status.code(), status.message()),
        })?
        .into_inner();
    if health.status != ServingStatus::Serving as i32 {
        let answer = ServingStatus::try_from(health.status).map_or_else(
            |_| health.status.to_string(),
            |s| s.as_str_name().to_owned(),
        );
        return Err(VerifyError::Health { url, answer });
    }
    if let Some(list) = list {
        call(channel, list)
            .await
            .map_err(|status| VerifyError::Call {
                url: url.clone(),
                path: list.path.clone(),
                code: status.code(),
                message: status.message().to_owned(),
            })?;
    }
    Ok(Verified {
        url,
        rpc: list.map(|l| l.path.trim_start_matches('/').to_owned()),
        command,
    })
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} answered health SERVING", self.url)?;
        match &self.rpc {
            Some(rpc) => write!(f, " and {rpc} OK"),
            None => Ok(()),
        }
    }
}

async fn call(channel: Channel, list: &ListCall) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = list
        .path
        .parse()
        .map_err(|_| tonic::Status::internal(format!("not a path: {}", list.path)))?;
    grpc.unary(tonic::Request::new(list.request.clone()), path, RawCodec)
        .await
        .map(drop)
}

/// Messages as their encoded bytes: the request is encoded already, the response is only
/// checked for its status.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let remaining = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, remaining).to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_list_request_carries_the_fields_its_partition_needs() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated-example");
        let project = crate::load(&dir).expect("the example loads");
        let call = list_call(&project).expect("the example lists tasks");
        assert_eq!(call.path, "/tasks.TaskService/ListTasks");
        assert_eq!(call.json, r#"{"projectId":"svcgen-verify"}"#);
        let descriptor = project
            .compiled
            .pool
            .get_message_by_name("tasks.ListTasksRequest")
            .expect("request type");
        let decoded = DynamicMessage::decode(descriptor, call.request.as_slice()).expect("decodes");
        assert_eq!(
            decoded.get_field_by_name("project_id").as_deref(),
            Some(&Value::String(PROBE_VALUE.into()))
        );
    }
}
