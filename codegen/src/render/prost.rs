//! Messages and the tonic server trait, by prost-build and tonic-prost-build in memory, with
//! `#[derive(Entity)]` and its key attributes attached to entity messages.

use std::collections::BTreeMap;

use prost::Message as _;
use prost_build::Module;
use prost_reflect::DescriptorPool;

use crate::model::Model;

/// `file name → code` for each proto package of `files`.
pub(super) fn render(
    pool: &DescriptorPool,
    files: &[String],
    model: &Model,
) -> Result<BTreeMap<String, String>, String> {
    let mut config = prost_build::Config::new();
    config.service_generator(
        tonic_prost_build::configure()
            .build_client(false)
            .build_transport(false)
            .service_generator(),
    );
    for entity in &model.entities {
        config.type_attribute(&entity.proto_path, "#[derive(::svcgen_runtime::Entity)]");
        config.type_attribute(&entity.proto_path, entity_attribute(entity));
    }
    for path in model.stored_messages.iter().chain(&model.stored_oneofs) {
        config.type_attribute(path, "#[derive(::svcgen_runtime::Attributes)]");
    }
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
    let modules = config
        .generate(requests)
        .map_err(|e| format!("prost-build: {e}"))?;
    let modules: Vec<_> = modules
        .into_iter()
        .filter(|(module, _)| own.contains(module))
        .collect();
    Ok(modules
        .into_iter()
        .map(|(module, code)| (module.to_file_name_or("_"), code))
        .collect())
}

/// `#[entity(...)]` for one entity, from the model.
fn entity_attribute(entity: &crate::model::Entity) -> String {
    let mut parts = vec![
        format!("table = {:?}", entity.table),
        format!("pk = {:?}", entity.pk.text),
        format!("sk = {:?}", entity.sk.text),
    ];
    for index in &entity.indexes {
        parts.push(format!(
            "index(name = {:?}, pk = {:?}, sk = {:?})",
            index.name, index.pk.text, index.sk.text
        ));
    }
    for (name, value) in [
        ("version", &entity.version_field),
        ("ttl", &entity.ttl_field),
        ("generated_id", &entity.generated_id_field),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name} = {value:?}"));
        }
    }
    format!("#[entity({})]", parts.join(", "))
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
