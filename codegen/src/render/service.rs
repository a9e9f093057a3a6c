//! `src/generated/service.rs`: per gRPC service, the handler trait users implement (validation
//! hooks with defaults, required methods for hand-written RPCs) and the tonic trait impl that
//! validates, calls the repository and maps errors to status codes.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::rust::{docs, field_ident, type_path};
use crate::model::{Method, Model, Operation, Service};

pub(super) fn render(model: &Model) -> TokenStream {
    let services = model
        .services
        .iter()
        .map(|service| render_service(model, service));
    quote! {
        //! gRPC glue: each RPC is checked by the handler, served by its repository, and its
        //! errors mapped to status codes in one place (`svcgen_runtime::Error`).

        use ::svcgen_runtime::codegen as rt;
        use rt::{Request, Response, Status};

        use super::repository::Repositories;

        #(#services)*
    }
}

pub(super) fn handler_trait(service: &Service) -> syn::Ident {
    format_ident!("{}Handler", service.name)
}

pub(super) fn impl_struct(service: &Service) -> syn::Ident {
    format_ident!("{}Impl", service.name)
}

/// tonic's server module of `service`, as a path from `from` (`super` or `self`).
pub(super) fn server_module(service: &Service, from: &str) -> syn::Path {
    let module = format!(
        "{from}::{}::{}_server",
        service.package_module,
        heck::ToSnakeCase::to_snake_case(service.name.as_str())
    );
    syn::parse_str(&module).unwrap_or_else(|_| syn::parse_quote!(super))
}

fn render_service(model: &Model, service: &Service) -> TokenStream {
    let handler = handler_trait(service);
    let imp = impl_struct(service);
    let server = server_module(service, "super");
    let trait_ident = format_ident!("{}", service.name);
    let custom: Vec<&Method> = service
        .methods
        .iter()
        .filter(|m| matches!(m.operation, Operation::Custom))
        .collect();
    let custom_traits = custom.iter().map(|m| custom_trait(m));
    let supertraits = custom.iter().map(|m| rpc_trait(m));
    let hooks = service
        .methods
        .iter()
        .filter(|m| !matches!(m.operation, Operation::Custom))
        .map(check_method);
    let rpcs = service.methods.iter().map(|method| rpc(model, method));
    let handler_doc = format!(
        " The hand-written part of `{}`: request checks (default: accept; override them in `src/handler.rs`) and, as supertraits, one trait per RPC marked custom (each implemented in its own file under `src/rpc/`).",
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

fn check_ident(method: &Method) -> syn::Ident {
    format_ident!("check_{}", method.rust_name)
}

/// The trait a hand-written RPC is implemented through, e.g. `ArchiveTaskRpc`.
pub(super) fn rpc_trait(method: &Method) -> syn::Ident {
    format_ident!("{}Rpc", method.name)
}

/// The file a hand-written RPC is implemented in, relative to the project.
pub(super) fn rpc_file(method: &Method) -> String {
    format!("src/rpc/{}.rs", method.rust_name)
}

fn custom_trait(method: &Method) -> TokenStream {
    let input = type_path(&method.input);
    let output = type_path(&method.output);
    let name = format_ident!("{}", method.rust_name);
    let ident = rpc_trait(method);
    let doc = format!(
        " `{}`, hand-written (the proto marks it custom): implement it in `{}`.",
        method.name,
        rpc_file(method)
    );
    let method_doc = format!(
        " Serves one `{}` call with the service's generated repositories at hand.",
        method.name
    );
    let proto_docs = docs(&method.doc);
    quote! {
        #[doc = #doc]
        #[doc = ""]
        #proto_docs
        pub trait #ident: Send + Sync + 'static {
            #[doc = #method_doc]
            fn #name(
                &self,
                repositories: &Repositories,
                request: Request<#input>,
            ) -> impl ::core::future::Future<Output = Result<Response<#output>, Status>> + Send;
        }
    }
}

fn check_method(method: &Method) -> TokenStream {
    let input = type_path(&method.input);
    let check = check_ident(method);
    let doc = format!(
        " Checks a `{}` request before it reaches the store; an error status is returned to the client as it is.",
        method.name
    );
    quote! {
        #[doc = #doc]
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

fn rpc(model: &Model, method: &Method) -> TokenStream {
    let name = format_ident!("{}", method.rust_name);
    let input = type_path(&method.input);
    let output = type_path(&method.output);
    let check = check_ident(method);
    let body = match &method.operation {
        Operation::Custom => {
            return quote! {
                async fn #name(&self, request: Request<#input>) -> Result<Response<#output>, Status> {
                    self.handler.#name(&self.repositories, request).await
                }
            };
        }
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
            let args = model.entities[*entity].key_fields().into_iter().map(|f| {
                let f = field_ident(f);
                quote!(request.#f)
            });
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
        } => {
            let e = &model.entities[*entity];
            let repo = repo_field(model, *entity);
            let mut args: Vec<TokenStream> = e
                .key_fields()
                .into_iter()
                .map(|f| {
                    let f = field_ident(f);
                    quote!(request.#f)
                })
                .collect();
            if e.version_field.is_some() {
                args.push(match version {
                    Some(v) => {
                        let v = field_ident(v);
                        quote!(request.#v)
                    }
                    None => quote!(0),
                });
            }
            if *returns_entity {
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
        Operation::List {
            entity,
            index,
            items_field,
            more_response_fields,
            ..
        } => {
            let e = &model.entities[*entity];
            let repo = repo_field(model, *entity);
            let list = format_ident!("{}", method.rust_name);
            let args = e.partition_fields(index.as_deref()).into_iter().map(|f| {
                let f = field_ident(f);
                quote!(request.#f)
            });
            let items = field_ident(items_field);
            let rest = more_response_fields.then(|| quote!(..Default::default()));
            quote! {
                let page = self.repositories.#repo.#list(#(#args,)* request.page_size, &request.page_token).await?;
                Ok(Response::new(#output { #items: page.items, next_page_token: page.next_page_token, #rest }))
            }
        }
    };
    quote! {
        async fn #name(&self, request: Request<#input>) -> Result<Response<#output>, Status> {
            let request = request.into_inner();
            self.handler.#check(&request)?;
            #body
        }
    }
}

fn repo_field(model: &Model, entity: usize) -> syn::Ident {
    field_ident(&heck::ToSnakeCase::to_snake_case(
        model.entities[entity].name.as_str(),
    ))
}
