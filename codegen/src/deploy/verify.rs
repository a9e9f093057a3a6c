//! Step 11 and `svcgen verify`: calls the service through the load balancer as a client
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
use crate::model::options::FieldRules;

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
/// `required` field set to a value its rules accept (strings `svcgen-verify`, numbers 1, enums
/// their first defined non-zero value, booleans true; see [`probe_string`]).
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
    let rules = |name: &str| {
        model
            .validated(&method.input_name)
            .and_then(|v| v.fields.iter().find(|f| f.name == name))
            .map(|f| &f.rules)
    };
    let mut needed: Vec<(String, Option<&FieldRules>)> = model
        .entity(entity)
        .partition_fields(index.as_deref())
        .into_iter()
        .map(|name| (name.to_owned(), rules(name)))
        .collect();
    if let Some(validated) = model.validated(&method.input_name) {
        for field in validated.fields.iter().filter(|f| f.rules.required) {
            if !needed.iter().any(|(name, _)| *name == field.name) {
                needed.push((field.name.clone(), Some(&field.rules)));
            }
        }
    }
    let (message, json) = filled(&descriptor, &needed);
    Some(ListCall {
        path: format!("/{}/{}", service.full_name, method.name),
        request: message.encode_to_vec(),
        json,
    })
}

/// A string that passes `rules`: a UUID, an address, or `svcgen-verify` cut or padded to the
/// lengths allowed (a `pattern` is not taken into account).
fn probe_string(rules: Option<&FieldRules>) -> String {
    let Some(rules) = rules else {
        return PROBE_VALUE.to_owned();
    };
    if rules.uuid {
        return "00000000-0000-4000-8000-000000000000".to_owned();
    }
    if rules.email {
        return format!("{PROBE_VALUE}@example.com");
    }
    let mut value = PROBE_VALUE.to_owned();
    let min = usize::try_from(rules.min_len.unwrap_or(0)).unwrap_or(usize::MAX);
    while value.len() < min {
        value.push('x');
    }
    if let Some(max) = rules.max_len.and_then(|m| usize::try_from(m).ok()) {
        value.truncate(max.max(min).max(1));
    }
    value
}

/// A number that passes `rules`: 1 within `[min, max]`.
fn probe_number(rules: Option<&FieldRules>) -> f64 {
    let (min, max) = rules.map_or((None, None), |r| (r.min, r.max));
    let mut value = 1.0_f64;
    if let Some(min) = min.filter(|m| value < *m) {
        value = min.ceil();
    }
    if let Some(max) = max.filter(|m| value > *m) {
        value = max.floor();
    }
    value
}

/// A message of `descriptor` with the fields in `needed` set to values their rules accept, and
/// the same as JSON.
fn filled(
    descriptor: &MessageDescriptor,
    needed: &[(String, Option<&FieldRules>)],
) -> (DynamicMessage, String) {
    let mut message = DynamicMessage::new(descriptor.clone());
    let mut json = serde_json::Map::new();
    for field in descriptor.fields() {
        let Some((_, rules)) = needed.iter().find(|(n, _)| n == field.name()) else {
            continue;
        };
        if field.is_list() || field.is_map() {
            continue;
        }
        let number = probe_number(*rules);
        let (value, as_json) = match field.kind() {
            Kind::String => {
                let text = probe_string(*rules);
                (Value::String(text.clone()), text.into())
            }
            Kind::Bool => (Value::Bool(true), true.into()),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                (Value::I32(number as i32), (number as i32).into())
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => (
                Value::I64(number as i64),
                (number as i64).to_string().into(),
            ),
            Kind::Uint32 | Kind::Fixed32 => (Value::U32(number as u32), (number as u32).into()),
            Kind::Uint64 | Kind::Fixed64 => (
                Value::U64(number as u64),
                (number as u64).to_string().into(),
            ),
            Kind::Float => (Value::F32(number as f32), number.into()),
            Kind::Double => (Value::F64(number), number.into()),
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

    #[test]
    fn probe_values_pass_the_field_rules() {
        let rules = |edit: fn(&mut FieldRules)| {
            let mut rules = FieldRules::default();
            edit(&mut rules);
            rules
        };
        assert_eq!(probe_string(None), PROBE_VALUE);
        let uuid = rules(|r| r.uuid = true);
        assert_eq!(probe_string(Some(&uuid)).len(), 36);
        let email = rules(|r| r.email = true);
        assert_eq!(probe_string(Some(&email)), "svcgen-verify@example.com");
        let long = rules(|r| r.min_len = Some(20));
        assert_eq!(probe_string(Some(&long)), "svcgen-verifyxxxxxxx");
        let short = rules(|r| r.max_len = Some(4));
        assert_eq!(probe_string(Some(&short)), "svcg");
        assert!((probe_number(None) - 1.0).abs() < f64::EPSILON);
        let at_least = rules(|r| r.min = Some(10.5));
        assert!((probe_number(Some(&at_least)) - 11.0).abs() < f64::EPSILON);
        let at_most = rules(|r| r.max = Some(-3.0));
        assert!((probe_number(Some(&at_most)) + 3.0).abs() < f64::EPSILON);
    }
}
