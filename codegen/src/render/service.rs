//! `src/generated/service.rs`: per gRPC service, the handler trait users implement (validation
//! hooks with defaults, required methods for hand-written RPCs) and the tonic trait impl that
//! validates, calls the repository and maps errors to status codes.

use proc_macro2::TokenStream;
use quote::quote;

use super::rust::docs;
use super::validate;
use crate::model::{AccessOperation, EntityId, Method, Model, Operation, Service};
use crate::naming::{self, field_ident};

pub(super) fn render(model: &Model) -> TokenStream {
    let services = model
        .services
        .iter()
        .map(|service| render_service(model, service));
    let checks = validate::functions(model);
    let streams = model
        .services
        .iter()
        .flat_map(|s| &s.methods)
        .any(|m| m.server_streaming)
        .then(|| {
            quote! {
                /// What a hand-written RPC with a streamed response returns, a channel that
                /// makes one and how to spawn the task that feeds it within the call
                /// (re-exported for `src/rpc/`, which may use any).
                #[allow(unused_imports)]
                pub use rt::{ResponseStream, response_channel, spawn_in_call};
            }
        });
    let writes = model.methods().any(|m| match &m.operation {
        Operation::Custom { uses } => uses.iter().any(|a| {
            matches!(
                a.operation,
                AccessOperation::Create
                    | AccessOperation::Update
                    | AccessOperation::Delete
                    | AccessOperation::Check
            )
        }),
        _ => false,
    });
    let transaction = writes.then(|| {
        quote! {
            /// Writes that take effect together or not at all, for the `*_in` methods of
            /// the hand-written RPCs' store handles.
            #[allow(unused_imports)]
            pub use rt::Transaction;
        }
    });
    quote! {
        //! gRPC glue: each RPC is checked by the handler, served by its repository, and its
        //! errors mapped to status codes in one place (`svcgen_runtime::Error`).

        use ::svcgen_runtime::codegen as rt;
        use rt::{Request, Response, Status};

        use super::repository::Repositories;

        #streams
        #transaction

        #(#services)*

        #checks
    }
}

fn render_service(model: &Model, service: &Service) -> TokenStream {
    let handler = naming::handler_trait(&service.name);
    let imp = naming::impl_struct(&service.name);
    let server = naming::server_module(&service.package, &service.name, &quote!(super));
    let trait_ident = naming::service_trait(&service.name);
    let custom: Vec<&Method> = service
        .methods
        .iter()
        .filter(|m| matches!(m.operation, Operation::Custom { .. }))
        .collect();
    let custom_traits = custom.iter().map(|m| custom_trait(m));
    let supertraits = custom.iter().map(|m| naming::rpc_trait(&m.name));
    let hooks = service
        .methods
        .iter()
        .filter(|m| !matches!(m.operation, Operation::Custom { .. }))
        .map(hook_methods);
    let rpcs = service.methods.iter().map(|method| rpc(model, method));
    let handler_doc = format!(
        " The hand-written part of `{}`: per RPC a `prepare_<rpc>` hook that sees the call's context and may fill server-owned fields, then a `check_<rpc>` hook (defaults: accept; override them in `src/handler.rs`), and, as supertraits, one trait per RPC marked custom (each implemented in its own file under `src/rpc/`).",
        service.full_name
    );
    let impl_doc = format!(
        " `{}` served by the generated repositories and a [`{handler}`].",
        service.full_name
    );
    let service_docs = docs(&service.doc);
    quote! {
        #service_docs
        #[doc = ""]
        #[doc = #handler_doc]
        pub trait #handler: #(#supertraits +)* Send + Sync + 'static {
            #(#hooks)*
        }

        #(#custom_traits)*

        #[doc = #impl_doc]
        pub struct #imp<H> {
            repositories: Repositories,
            handler: ::std::sync::Arc<H>,
        }

        impl<H: #handler> #imp<H> {
            /// The service over `repositories`, delegating checks and custom RPCs to `handler`.
            pub fn new(repositories: Repositories, handler: ::std::sync::Arc<H>) -> Self {
                Self { repositories, handler }
            }
        }

        #[rt::async_trait]
        impl<H: #handler> #server::#trait_ident for #imp<H> {
            #(#rpcs)*
        }
    }
}

/// `src/generated/` as seen from this module.
fn generated() -> TokenStream {
    quote!(super)
}

/// The request and response types of a hand-written RPC's method, streams included.
fn custom_types(method: &Method) -> (TokenStream, TokenStream) {
    let input = method.input.tokens(&generated());
    let output = method.output.tokens(&generated());
    let input = if method.client_streaming {
        quote!(rt::Streaming<#input>)
    } else {
        input
    };
    let output = if method.server_streaming {
        quote!(rt::ResponseStream<#output>)
    } else {
        output
    };
    (input, output)
}

fn custom_trait(method: &Method) -> TokenStream {
    let (input, output) = custom_types(method);
    let name = naming::method_ident(&method.name);
    let ident = naming::rpc_trait(&method.name);
    let doc = format!(
        " `{}`, hand-written (the proto marks it custom): implement it in `{}`.",
        method.name,
        naming::rpc_file(&method.name)
    );
    let store = naming::store_struct(&method.name);
    let (store, method_doc) = if method.server_streaming {
        (
            quote!(super::repository::#store),
            format!(
                " Serves one `{}` call; `store` (owned, so that the stream can keep it) offers exactly the store operations the proto declares for it (`uses`). A stream still running shortly before the drain timeout ends with UNAVAILABLE.",
                method.name
            ),
        )
    } else {
        (
            quote!(&super::repository::#store),
            format!(
                " Serves one `{}` call; `store` offers exactly the store operations the proto declares for it (`uses`).",
                method.name
            ),
        )
    };
    let proto_docs = docs(&method.doc);
    quote! {
        #[doc = #doc]
        #[doc = ""]
        #proto_docs
        pub trait #ident: Send + Sync + 'static {
            #[doc = #method_doc]
            fn #name(
                &self,
                store: #store,
                request: Request<#input>,
            ) -> impl ::core::future::Future<Output = Result<Response<#output>, Status>> + Send;
        }
    }
}

/// The tonic trait method of a hand-written RPC: the handler's, with the store access it
/// declares; a response stream is bounded by the server's drain.
fn custom_rpc(model: &Model, method: &Method) -> TokenStream {
    let name = naming::method_ident(&method.name);
    let (input, output) = custom_types(method);
    let store = naming::store_struct(&method.name);
    let store = quote!(super::repository::#store);
    let checks = if method.client_streaming {
        TokenStream::new()
    } else {
        validate::request_checks(model, method, quote!(request.get_mut()))
    };
    let request = if checks.is_empty() {
        quote!(request)
    } else {
        quote!(mut request)
    };
    if !method.server_streaming {
        // A client stream may outlive the drain: it is answered UNAVAILABLE before the timeout.
        let call = if method.client_streaming {
            quote! {
                let drain = rt::Drain::of(request.extensions());
                drain.bound_call(self.handler.#name(&#store::new(&self.repositories), request)).await
            }
        } else {
            quote! { self.handler.#name(&#store::new(&self.repositories), request).await }
        };
        return quote! {
            async fn #name(&self, #request: Request<#input>) -> Result<Response<#output>, Status> {
                #checks
                #call
            }
        };
    }
    let stream = quote::format_ident!("{}Stream", method.name);
    quote! {
        type #stream = #output;

        async fn #name(&self, #request: Request<#input>) -> Result<Response<Self::#stream>, Status> {
            #checks
            let drain = rt::Drain::of(request.extensions());
            let response = self.handler.#name(#store::new(&self.repositories), request).await?;
            Ok(response.map(|stream| drain.bound(stream)))
        }
    }
}

/// The `prepare_<rpc>` and `check_<rpc>` hooks of a generated RPC, both accepting by default.
fn hook_methods(method: &Method) -> TokenStream {
    let input = method.input.tokens(&generated());
    let prepare = naming::prepare_ident(&method.name);
    let check = naming::check_ident(&method.name);
    let prepare_doc = format!(
        " Runs first for each `{}` call with its context (metadata such as a bearer token, what layers attached, the peer): may fill server-owned fields of the request (e.g. the caller as owner) or refuse the call; an error status is returned to the client as it is.",
        method.name
    );
    let check_doc = format!(
        " Checks a `{}` request before it reaches the store (after `{prepare}`); an error status is returned to the client as it is.",
        method.name
    );
    quote! {
        #[doc = #prepare_doc]
        fn #prepare(&self, context: &rt::RequestContext, request: &mut #input) -> Result<(), Status> {
            let _ = (context, request);
            Ok(())
        }

        #[doc = #check_doc]
        fn #check(&self, request: &#input) -> Result<(), Status> {
            let _ = request;
            Ok(())
        }
    }
}

/// `let <field> = request.<field>.ok_or_else(..)?;` for a required message field.
fn required(field: &str) -> (syn::Ident, TokenStream) {
    let message = format!("`{field}` is required");
    let ident = field_ident(field);
    let binding = quote! {
        let #ident = request.#ident.ok_or_else(|| Status::invalid_argument(#message))?;
    };
    (ident, binding)
}

/// The tonic trait method of one RPC: checks, then the repository call of its operation.
fn rpc(model: &Model, method: &Method) -> TokenStream {
    let name = naming::method_ident(&method.name);
    let input = method.input.tokens(&generated());
    let output = method.output.tokens(&generated());
    let prepare = naming::prepare_ident(&method.name);
    let check = naming::check_ident(&method.name);
    let body = match &method.operation {
        Operation::Custom { .. } => return custom_rpc(model, method),
        Operation::Create { entity, field } => {
            let repo = repo_field(model, *entity);
            let (value, binding) = required(field);
            quote! {
                #binding
                let created = self.repositories.#repo.create(#value).await?;
                Ok(Response::new(created))
            }
        }
        Operation::Get { entity } => {
            let repo = repo_field(model, *entity);
            let args = request_fields(model.entity(*entity).key_fields());
            quote! {
                let found = self.repositories.#repo.get(#(#args),*).await?;
                Ok(Response::new(found))
            }
        }
        Operation::Update {
            entity,
            field,
            mask_field,
        } => {
            let repo = repo_field(model, *entity);
            let (value, binding) = required(field);
            let mask = field_ident(mask_field);
            quote! {
                #binding
                let mask = request.#mask.map(|mask| mask.paths).unwrap_or_default();
                let updated = self.repositories.#repo.update(&#value, &mask).await?;
                Ok(Response::new(updated))
            }
        }
        Operation::Delete {
            entity,
            version,
            returns_entity,
        } => delete_body(model, *entity, version.as_deref(), *returns_entity),
        Operation::List {
            entity,
            index,
            items_field,
            more_response_fields,
            ..
        } => {
            let repo = repo_field(model, *entity);
            let list = naming::method_ident(&method.name);
            let partition = model.entity(*entity).partition_fields(index.as_deref());
            let args = request_fields(partition);
            let items = field_ident(items_field);
            let rest = more_response_fields.then(|| quote!(..Default::default()));
            quote! {
                let page = self.repositories.#repo.#list(#(#args,)* request.page_size, &request.page_token).await?;
                Ok(Response::new(#output { #items: page.items, next_page_token: page.next_page_token, #rest }))
            }
        }
    };
    let checks = validate::request_checks(model, method, quote!(&mut request));
    quote! {
        async fn #name(&self, request: Request<#input>) -> Result<Response<#output>, Status> {
            let (context, mut request) = rt::RequestContext::split(request);
            #checks
            self.handler.#prepare(&context, &mut request)?;
            self.handler.#check(&request)?;
            #body
        }
    }
}

/// `request.<field>` for each of `fields`.
fn request_fields(fields: Vec<&str>) -> Vec<TokenStream> {
    fields
        .into_iter()
        .map(|f| {
            let f = field_ident(f);
            quote!(request.#f)
        })
        .collect()
}

fn delete_body(
    model: &Model,
    entity: EntityId,
    version: Option<&str>,
    returns_entity: bool,
) -> TokenStream {
    let e = model.entity(entity);
    let repo = repo_field(model, entity);
    let mut args = request_fields(e.key_fields());
    if e.version.is_some() {
        args.push(match version {
            Some(v) => {
                let v = field_ident(v);
                quote!(request.#v)
            }
            None => quote!(0),
        });
    }
    if returns_entity {
        quote! {
            let deleted = self.repositories.#repo.delete(#(#args),*).await?;
            Ok(Response::new(deleted))
        }
    } else {
        quote! {
            self.repositories.#repo.delete(#(#args),*).await?;
            Ok(Response::new(()))
        }
    }
}

fn repo_field(model: &Model, entity: EntityId) -> syn::Ident {
    naming::entity_field(&model.entity(entity).name)
}
