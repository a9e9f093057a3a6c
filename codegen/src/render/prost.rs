//! Messages and the tonic server trait, by prost-build and tonic-prost-build in memory, with
//! `#[derive(Entity)]` and its key attributes attached to entity messages.

use std::collections::BTreeMap;

use prost::Message as _;
use prost_build::Module;
use prost_reflect::DescriptorPool;

use super::RenderError;
use crate::model::Model;

/// `file name → code` for each proto package of `files`.
pub(super) fn render(
    pool: &DescriptorPool,
    files: &[String],
    model: &Model,
) -> Result<BTreeMap<String, String>, RenderError> {
    let mut config = prost_build::Config::new();
    config.service_generator(
        tonic_prost_build::configure()
            .build_client(false)
            .build_transport(false)
            .service_generator(),
    );
    // prost-build resolves types across every file, so it gets the imports too; only the
    // packages of the project's own files are kept.
    let requests = pool
        .files()
        .map(|file| {
            (
                Module::from_protobuf_package_name(file.package_name()),
                file.file_descriptor_proto().clone(),
            )
        })
        .collect();
    let own: Vec<Module> = files
        .iter()
        .filter_map(|name| pool.get_file_by_name(name))
        .map(|file| Module::from_protobuf_package_name(file.package_name()))
        .collect();
    let modules = config.generate(requests).map_err(RenderError::ProstBuild)?;
    let mut out = BTreeMap::new();
    for (module, code) in modules
        .into_iter()
        .filter(|(module, _)| own.contains(module))
    {
        let code = attach_derives(&code, &module, model)?;
        out.insert(module.to_file_name_or("_"), code);
    }
    Ok(out)
}

/// Adds `#[derive(Entity)]` + `#[entity(...)]` to entity messages and `#[derive(Attributes)]`
/// to the other stored types of `package`. (prost-build's `type_attribute` also matches every
/// type nested in the named one, so the attributes are placed on the exact items instead.)
fn attach_derives(code: &str, module: &Module, model: &Model) -> Result<String, RenderError> {
    let in_module = |package: &str| Module::from_protobuf_package_name(package) == *module;
    let mut file = syn::parse_file(code).map_err(|source| RenderError::Unparsable {
        what: "prost output".to_owned(),
        source,
    })?;
    let mut targets: Vec<(&[String], Vec<syn::Attribute>)> = Vec::new();
    for entity in model
        .entities
        .iter()
        .filter(|e| in_module(&e.type_ref.package))
    {
        let attrs = format!(
            "#[derive(::svcgen_runtime::Entity)] {}",
            entity_attribute(entity)
        );
        targets.push((&entity.type_ref.path, parse_attributes(&attrs)?));
    }
    for stored in model.stored_types.iter().filter(|t| in_module(&t.package)) {
        targets.push((
            &stored.path,
            parse_attributes("#[derive(::svcgen_runtime::Attributes)]")?,
        ));
    }
    for (path, attrs) in targets {
        let attrs_slot = find_item(&mut file.items, path)
            .ok_or_else(|| RenderError::MissingType(path.join("::")))?;
        attrs_slot.splice(0..0, attrs);
    }
    Ok(prettyplease::unparse(&file))
}

fn parse_attributes(text: &str) -> Result<Vec<syn::Attribute>, RenderError> {
    let parser = syn::Attribute::parse_outer;
    syn::parse::Parser::parse_str(parser, text).map_err(|source| RenderError::Unparsable {
        what: format!("attribute `{text}`"),
        source,
    })
}

/// The attributes of the struct or enum at `path` among `items` (descending into modules).
fn find_item<'a>(
    items: &'a mut [syn::Item],
    path: &[String],
) -> Option<&'a mut Vec<syn::Attribute>> {
    let (first, rest) = path.split_first()?;
    items
        .iter_mut()
        .find_map(|item| match (item, rest.is_empty()) {
            (syn::Item::Struct(s), true) if s.ident == first => Some(&mut s.attrs),
            (syn::Item::Enum(e), true) if e.ident == first => Some(&mut e.attrs),
            (syn::Item::Mod(m), false) if m.ident == first => m
                .content
                .as_mut()
                .and_then(|(_, items)| find_item(items, rest)),
            _ => None,
        })
}

/// `#[entity(...)]` for one entity, from the model.
fn entity_attribute(entity: &crate::model::Entity) -> String {
    use svcgen_contract::entity_attr::{
        ATTRIBUTE, GENERATED_ID, INDEX, INDEX_NAME, PK, SK, TABLE, TTL, VERSION,
    };
    let mut parts = vec![
        format!("{TABLE} = {:?}", entity.table),
        format!("{PK} = {:?}", entity.pk.text),
        format!("{SK} = {:?}", entity.sk.text),
    ];
    for index in &entity.indexes {
        parts.push(format!(
            "{INDEX}({INDEX_NAME} = {:?}, {PK} = {:?}, {SK} = {:?})",
            index.name, index.pk.text, index.sk.text
        ));
    }
    for (name, value) in [
        (VERSION, &entity.version_field().map(str::to_owned)),
        (TTL, &entity.ttl_field),
        (GENERATED_ID, &entity.generated_id_field),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name} = {value:?}"));
        }
    }
    format!("#[{ATTRIBUTE}({})]", parts.join(", "))
}

/// The encoded `FileDescriptorSet` served by reflection: every file the protos need, without
/// source info (comments stay in the protos; the binary stays small).
pub(super) fn descriptor_set(pool: &DescriptorPool) -> Vec<u8> {
    let files = pool
        .files()
        .map(|file| {
            let mut proto = file.file_descriptor_proto().clone();
            proto.source_code_info = None;
            proto
        })
        .collect();
    prost_types::FileDescriptorSet { file: files }.encode_to_vec()
}
