//! `src/generated/repository.rs`: one typed repository per entity, delegating to the runtime's
//! `EntityTable`, and the table schemas.

use proc_macro2::TokenStream;
use quote::quote;

use svcgen_contract::KeyType;

use crate::config::Config;
use crate::model::{Access, AccessOperation, Entity, EntityId, Method, Model, Operation};
use crate::naming::{self, field_ident};

pub(super) fn render(config: &Config, model: &Model) -> TokenStream {
    let tables = model.tables.iter().map(|(name, indexes)| {
        let physical = config.physical_table(name);
        let ident = naming::table_const(name);
        let variable = svcgen_contract::tables::table_variable(name);
        let doc = format!(" Layout of table `{name}`.");
        quote! {
            #[doc = #doc]
            pub const #ident: rt::TableSchema = rt::TableSchema {
                name: #name,
                physical: #physical,
                variable: #variable,
                indexes: &[#(#indexes),*],
            };
        }
    });
    let table_idents = model.tables.keys().map(|name| naming::table_const(name));
    let repositories = model
        .entity_ids()
        .map(|(id, entity)| repository(model, id, entity));
    let handles = model
        .methods()
        .filter_map(|method| match &method.operation {
            Operation::Custom { uses } => Some(store_handle(model, method, uses)),
            _ => None,
        });
    let fields = model.entities.iter().map(|entity| {
        let field = naming::entity_field(&entity.name);
        let ty = naming::repository_ident(&entity.name);
        let doc = format!(" `{}` items.", entity.name);
        quote!(#[doc = #doc] pub #field: #ty)
    });
    let inits = model.entities.iter().map(|entity| {
        let field = naming::entity_field(&entity.name);
        let ty = naming::repository_ident(&entity.name);
        let table = &entity.table;
        quote!(#field: #ty::new(stores.table(#table)))
    });
    quote! {
        //! Repositories: typed access to each entity, one store request per call.
        // Key-only probes spell `..Default::default()` even when the keys are every field, and
        // each repository offers every operation although a service may use only some.
        #![allow(clippy::needless_update, dead_code)]

        use ::svcgen_runtime::codegen as rt;

        #(#tables)*

        /// Every table the service uses.
        pub const TABLES: &[rt::TableSchema] = &[#(#table_idents),*];

        /// The repositories of every entity, which the generated RPCs use (a hand-written RPC
        /// gets its declared part of them, `<Rpc>Store`).
        #[derive(Clone)]
        pub struct Repositories {
            #(#fields,)*
        }

        impl Repositories {
            /// Repositories over the service's stores.
            pub fn new(stores: &rt::Stores) -> Self {
                Self { #(#inits,)* }
            }
        }

        #(#repositories)*

        #(#handles)*
    }
}

/// Parameters and struct-literal fields for the key fields of `fields`.
fn key_params(entity: &Entity, fields: &[&str]) -> (Vec<TokenStream>, Vec<syn::Ident>) {
    let params = fields
        .iter()
        .map(|name| {
            let ident = field_ident(name);
            let ty = match entity.key_field_types.get(*name) {
                Some(KeyType::U32) => quote!(u32),
                Some(KeyType::U64) => quote!(u64),
                Some(KeyType::I32 | KeyType::Enum) => quote!(i32),
                Some(KeyType::I64) => quote!(i64),
                Some(KeyType::Timestamp) => {
                    quote!(::core::option::Option<::prost_types::Timestamp>)
                }
                Some(KeyType::String) | None => quote!(String),
            };
            quote!(#ident: #ty)
        })
        .collect();
    (params, fields.iter().map(|f| field_ident(f)).collect())
}

/// The key parameters plus the version field, when the entity has one (a delete's or a
/// condition's parameters).
fn versioned_key_params(entity: &Entity) -> (Vec<TokenStream>, Vec<syn::Ident>) {
    let (mut params, mut fields) = key_params(entity, &entity.key_fields());
    if let Some(version) = &entity.version {
        let ident = field_ident(&version.name);
        let ty = if version.signed {
            quote!(i64)
        } else {
            quote!(u64)
        };
        params.push(quote!(#ident: #ty));
        fields.push(ident);
    }
    (params, fields)
}

/// The message type of `entity` as seen from this module.
fn entity_type(entity: &Entity) -> TokenStream {
    entity.type_ref.tokens(&quote!(super))
}

/// The repository of one entity. Most of the body is the emitted type, which reads best as one
/// `quote!`; the methods are [`methods`]'.
fn repository(model: &Model, id: EntityId, entity: &Entity) -> TokenStream {
    let ty = entity_type(entity);
    let ident = naming::repository_ident(&entity.name);
    let doc = format!(
        " `{}` items in table `{}`: pk `{}`, sk `{}`.",
        entity.name, entity.table, entity.pk.text, entity.sk.text
    );
    let methods = methods(model, id, entity)
        .into_iter()
        .map(|(_, method)| method);
    quote! {
        #[doc = #doc]
        #[derive(Clone)]
        pub struct #ident {
            table: rt::EntityTable<#ty>,
        }

        impl #ident {
            /// The repository over `store`.
            pub fn new(store: ::std::sync::Arc<dyn rt::Store>) -> Self {
                Self { table: rt::EntityTable::new(store) }
            }

            #(#methods)*
        }
    }
}

/// Every repository method of `entity` with the store access it needs: create, get, update,
/// delete, and one query per list RPC. The store handles of hand-written RPCs offer a subset.
fn methods(model: &Model, id: EntityId, entity: &Entity) -> Vec<(AccessOperation, TokenStream)> {
    let ty = entity_type(entity);
    let name = &entity.name;
    let var = naming::entity_field(name);
    let key_fields = entity.key_fields();
    let (params, fields) = key_params(entity, &key_fields);
    let key_doc = format!(
        " The `{name}` with key `{}` / `{}` (one GetItem).",
        entity.pk.text, entity.sk.text
    );
    let create_doc = format!(
        " Stores a new `{name}`; ALREADY_EXISTS when its key is taken (one conditional PutItem)."
    );
    let update_doc = format!(
        " Updates the `{name}` fields named in `mask` (every mutable field when empty); a non-zero version must match the stored one (one UpdateItem)."
    );
    let (delete_params, delete_fields) = versioned_key_params(entity);
    let delete_doc = format!(
        " Deletes the `{name}` with this key; a non-zero version must match (one conditional DeleteItem)."
    );
    let mut methods = vec![
        (
            AccessOperation::Create,
            quote! {
                #[doc = #create_doc]
                pub async fn create(&self, #var: #ty) -> Result<#ty, rt::Error> {
                    self.table.create(#var).await
                }
            },
        ),
        (
            AccessOperation::Get,
            quote! {
                #[doc = #key_doc]
                pub async fn get(&self, #(#params),*) -> Result<#ty, rt::Error> {
                    self.table.get(&#ty { #(#fields,)* ..Default::default() }).await
                }
            },
        ),
        (
            AccessOperation::Update,
            quote! {
                #[doc = #update_doc]
                pub async fn update(&self, #var: &#ty, mask: &[String]) -> Result<#ty, rt::Error> {
                    self.table.update(#var, mask).await
                }
            },
        ),
        (
            AccessOperation::Delete,
            quote! {
                #[doc = #delete_doc]
                pub async fn delete(&self, #(#delete_params),*) -> Result<#ty, rt::Error> {
                    self.table.delete(&#ty { #(#delete_fields,)* ..Default::default() }).await
                }
            },
        ),
    ];
    methods.extend(
        model
            .methods()
            .filter(|method| method.operation.entity() == Some(id))
            .filter_map(|method| list_method(entity, method)),
    );
    methods
}

/// The store handle of a hand-written RPC: for each entity it declares, a type offering exactly
/// the declared methods, so an undeclared call does not compile (and IAM allows exactly these).
fn store_handle(model: &Model, method: &Method, uses: &[Access]) -> TokenStream {
    let store = naming::store_struct(&method.name);
    let mut entities: Vec<EntityId> = uses.iter().map(|a| a.entity).collect();
    entities.dedup();
    let summary = |id: EntityId| {
        uses.iter()
            .filter(|a| a.entity == id)
            .map(|a| a.operation.method_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut fields = Vec::new();
    let mut inits = Vec::new();
    let mut types = Vec::new();
    for id in entities {
        let entity = model.entity(id);
        let access = naming::access_struct(&method.name, &entity.name);
        let field = naming::entity_field(&entity.name);
        let ty = entity_type(entity);
        let field_doc = format!(" `{}`: {}.", entity.name, summary(id));
        fields.push(quote!(#[doc = #field_doc] pub #field: #access));
        inits.push(quote!(#field: #access { table: repositories.#field.table.clone() }));
        let declared = methods(model, id, entity)
            .into_iter()
            .chain(handle_methods(entity))
            .filter(|(operation, _)| {
                uses.contains(&Access {
                    entity: id,
                    operation: operation.clone(),
                })
            })
            .map(|(_, tokens)| tokens);
        let doc = format!(
            " `{}` as `{}` declares it (`uses`): {}.",
            entity.name,
            method.name,
            summary(id)
        );
        types.push(quote! {
            #[doc = #doc]
            #[derive(Clone)]
            pub struct #access {
                table: rt::EntityTable<#ty>,
            }

            impl #access {
                #(#declared)*
            }
        });
    }
    let doc = format!(
        " What `{}` may do in the store: exactly the operations its `uses` declares in the proto, which are also exactly what the task role allows it.",
        method.name
    );
    let repositories = if fields.is_empty() {
        quote!(_)
    } else {
        quote!(repositories)
    };
    quote! {
        #[doc = #doc]
        #[derive(Clone)]
        pub struct #store {
            #(#fields,)*
        }

        impl #store {
            /// The declared access over the service's repositories.
            pub fn new(#repositories: &Repositories) -> Self {
                Self { #(#inits,)* }
            }
        }

        #(#types)*
    }
}

/// The methods only a hand-written RPC's store handle offers, when declared: the writes of a
/// transaction (`create_in`, `update_in`, `delete_in`, `check_in`) and `batch_get`.
fn handle_methods(entity: &Entity) -> Vec<(AccessOperation, TokenStream)> {
    let ty = entity_type(entity);
    let name = &entity.name;
    let var = naming::entity_field(name);
    let (delete_params, delete_fields) = versioned_key_params(entity);
    let in_doc = |what: &str| {
        format!(
            " Adds {what} to `transaction`; it takes effect when the transaction commits, with every other write of it or not at all."
        )
    };
    let (create_in, update_in, delete_in, check_in) = (
        in_doc(&format!(
            "the create of a `{name}` (returned with its generated ID and first version)"
        )),
        in_doc(&format!(
            "the update of the `{name}` fields named in `mask`"
        )),
        in_doc(&format!(
            "the delete of the `{name}` with this key (at this version when not zero)"
        )),
        in_doc(&format!(
            "the condition that the `{name}` with this key exists (at this version when not zero), unchanged"
        )),
    );
    let batch_doc = format!(
        " The `{name}`s with the keys of `keys` (messages holding the key fields), in their order, `None` where there is none (BatchGetItem, 100 keys a request)."
    );
    vec![
        (
            AccessOperation::Create,
            quote! {
                #[doc = #create_in]
                pub fn create_in(&self, transaction: &mut rt::Transaction, #var: #ty) -> Result<#ty, rt::Error> {
                    self.table.create_in(transaction, #var)
                }
            },
        ),
        (
            AccessOperation::Update,
            quote! {
                #[doc = #update_in]
                pub fn update_in(&self, transaction: &mut rt::Transaction, #var: &#ty, mask: &[String]) -> Result<(), rt::Error> {
                    self.table.update_in(transaction, #var, mask)
                }
            },
        ),
        (
            AccessOperation::Delete,
            quote! {
                #[doc = #delete_in]
                pub fn delete_in(&self, transaction: &mut rt::Transaction, #(#delete_params),*) -> Result<(), rt::Error> {
                    self.table.delete_in(transaction, &#ty { #(#delete_fields,)* ..Default::default() })
                }
            },
        ),
        (
            AccessOperation::Check,
            quote! {
                #[doc = #check_in]
                pub fn check_in(&self, transaction: &mut rt::Transaction, #(#delete_params),*) -> Result<(), rt::Error> {
                    self.table.check_in(transaction, &#ty { #(#delete_fields,)* ..Default::default() })
                }
            },
        ),
        (
            AccessOperation::BatchGet,
            quote! {
                #[doc = #batch_doc]
                pub async fn batch_get(&self, keys: &[#ty]) -> Result<Vec<Option<#ty>>, rt::Error> {
                    self.table.batch_get(keys).await
                }
            },
        ),
    ]
}

/// The repository method of a list RPC on `entity` (`None` for other operations).
fn list_method(entity: &Entity, method: &Method) -> Option<(AccessOperation, TokenStream)> {
    let Operation::List {
        index,
        descending,
        default_page_size,
        max_page_size,
        ..
    } = &method.operation
    else {
        return None;
    };
    let ty = entity_type(entity);
    let method_ident = naming::method_ident(&method.name);
    let partition = entity.partition_fields(index.as_deref());
    let (params, fields) = key_params(entity, &partition);
    let (pk, sk) = index
        .as_ref()
        .and_then(|i| entity.indexes.iter().find(|x| &x.name == i))
        .map_or((&entity.pk, &entity.sk), |x| (&x.pk, &x.sk));
    let source = index
        .as_ref()
        .map_or_else(|| "the table".to_owned(), |i| format!("index `{i}`"));
    let doc = format!(
        " {}: one page of partition `{}` of {source}, sort keys beginning `{}`, {} (one Query).",
        method.name,
        pk.text,
        sk.literal_prefix(),
        if *descending {
            "highest first"
        } else {
            "lowest first"
        }
    );
    let default_page_size = proc_macro2::Literal::i32_unsuffixed(*default_page_size);
    let max_page_size = proc_macro2::Literal::i32_unsuffixed(*max_page_size);
    let index_arg = match index {
        Some(i) => quote!(::core::option::Option::Some(#i)),
        None => quote!(::core::option::Option::None),
    };
    let access = AccessOperation::List {
        method: method.name.clone(),
        index: index.clone(),
    };
    Some((
        access,
        quote! {
            #[doc = #doc]
            pub async fn #method_ident(&self, #(#params,)* page_size: i32, page_token: &str) -> Result<rt::Page<#ty>, rt::Error> {
                let probe = #ty { #(#fields,)* ..Default::default() };
                let limits = rt::PageLimits { default_size: #default_page_size, max_size: #max_page_size };
                self.table.list(&probe, #index_arg, #descending, limits, page_size, page_token).await
            }
        },
    ))
}
