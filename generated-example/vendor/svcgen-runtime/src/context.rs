//! What a call carries besides its message, for the handler's `prepare_<rpc>` hooks.

use std::net::SocketAddr;

use tonic::Request;
use tonic::metadata::MetadataMap;

/// A call's metadata (its headers: a bearer token, a caller's identity), its extensions (what
/// tower layers and interceptors attached, e.g. an authenticated principal) and the peer's
/// address.
#[derive(Debug)]
pub struct RequestContext {
    metadata: MetadataMap,
    extensions: http::Extensions,
    remote_addr: Option<SocketAddr>,
}

impl RequestContext {
    /// Splits a request into its context and its message.
    pub fn split<T>(request: Request<T>) -> (Self, T) {
        let remote_addr = request.remote_addr();
        let (metadata, extensions, message) = request.into_parts();
        let context = Self {
            metadata,
            extensions,
            remote_addr,
        };
        (context, message)
    }

    /// The call's metadata (gRPC headers).
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// What layers and interceptors attached to the call.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The peer's address, when the transport knows it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_splits_into_its_context_and_message() {
        let mut request = Request::new(7_u32);
        request
            .metadata_mut()
            .insert("x-user", "ada".parse().expect("ASCII"));
        request.extensions_mut().insert("principal");
        let (context, message) = RequestContext::split(request);
        assert_eq!(message, 7);
        assert_eq!(
            context
                .metadata()
                .get("x-user")
                .and_then(|v| v.to_str().ok()),
            Some("ada")
        );
        assert_eq!(context.extensions().get::<&str>(), Some(&"principal"));
        assert_eq!(context.remote_addr(), None);
    }
}
