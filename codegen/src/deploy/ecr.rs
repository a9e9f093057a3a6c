//! ECR (step 1): the repository (scan on push, a lifecycle policy) and the image, built and
//! pushed unless its tag is there.

use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration, ImageTagMutability};

use super::compare;
use super::image::{Engine, Login};
use super::{AwsError, Clients, DeployError, Failure, Plan, Settings};
use crate::infra::Repository;

/// Step 1: the ECR repository, scanning on push. Returns its URI.
pub(super) async fn repository(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    account: &str,
) -> Result<String, DeployError> {
    let name = &settings.infra.repository.name;
    let scanning = ImageScanningConfiguration::builder()
        .scan_on_push(true)
        .build();
    let described = aws
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await;
    let existing = match described {
        Ok(out) => out.repositories().first().cloned(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(AwsError::call("ecr:DescribeRepositories", e).into()),
    };
    // Registries in China end in amazonaws.com.cn.
    let suffix = if settings.region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let uri = format!("{account}.dkr.ecr.{}.{suffix}/{name}", settings.region);
    let uri = match existing {
        Some(repository) => {
            let scans = repository
                .image_scanning_configuration()
                .is_some_and(|s| s.scan_on_push());
            if !scans && plan.change(format!("turn on scan on push for repository {name}")) {
                aws.ecr
                    .put_image_scanning_configuration()
                    .repository_name(name)
                    .image_scanning_configuration(scanning)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("ecr:PutImageScanningConfiguration", e))?;
            }
            repository.repository_uri().unwrap_or(&uri).to_owned()
        }
        None => {
            if plan.change(format!("create repository {name} (scan on push)")) {
                let created = aws
                    .ecr
                    .create_repository()
                    .repository_name(name)
                    .image_scanning_configuration(scanning)
                    .image_tag_mutability(ImageTagMutability::Mutable)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("ecr:CreateRepository", e))?;
                match created.repository().and_then(|r| r.repository_uri()) {
                    Some(created) => created.to_owned(),
                    None => uri,
                }
            } else {
                // A dry run: the repository does not exist, so neither does its policy.
                plan.change(format!(
                    "expire all but the newest {} images of repository {name}",
                    settings.infra.repository.keep_images
                ));
                return Ok(uri);
            }
        }
    };
    lifecycle_policy(aws, plan, &settings.infra.repository).await?;
    Ok(uri)
}

/// The repository's lifecycle policy: keep the newest `[deploy] keep_images` images.
async fn lifecycle_policy(
    aws: &Clients,
    plan: &mut Plan<'_>,
    repository: &Repository,
) -> Result<(), DeployError> {
    let (name, keep) = (&repository.name, repository.keep_images);
    let wanted = &repository.lifecycle_policy;
    let current = match aws
        .ecr
        .get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
    {
        Ok(out) => out.lifecycle_policy_text().and_then(compare::policy),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_lifecycle_policy_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(AwsError::call("ecr:GetLifecyclePolicy", e).into()),
    };
    if current != compare::policy(wanted)
        && plan.change(format!(
            "expire all but the newest {keep} images of repository {name}"
        ))
    {
        aws.ecr
            .put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(wanted.as_str())
            .send()
            .await
            .map_err(|e| AwsError::call("ecr:PutLifecyclePolicy", e))?;
    }
    Ok(())
}

/// Step 1: the image `repository:tag`, built and pushed unless the tag is in ECR already.
pub(super) async fn image(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    repository: &str,
    engine: &Engine,
    tag: &str,
) -> Result<String, DeployError> {
    let image = format!("{repository}:{tag}");
    let found = aws
        .ecr
        .describe_images()
        .repository_name(&settings.infra.repository.name)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    let present = match found {
        Ok(out) => !out.image_details().is_empty(),
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_image_not_found_exception() || e.is_repository_not_found_exception()
            }) =>
        {
            false
        }
        Err(e) => return Err(AwsError::call("ecr:DescribeImages", e).into()),
    };
    if !present && plan.change(format!("build and push {image} with {}", engine.name)) {
        let token = aws
            .ecr
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| AwsError::call("ecr:GetAuthorizationToken", e))?;
        let data = token
            .authorization_data()
            .first()
            .ok_or(AwsError::Unexpected {
                operation: "ecr:GetAuthorizationToken",
                returned: "no credentials",
            })?;
        let registry = repository.split('/').next().unwrap_or(repository);
        let login = Login::from_token(registry, data.authorization_token().unwrap_or_default())?;
        engine
            .build_and_push(
                &settings.dir,
                settings.architecture.platform(),
                repository,
                tag,
                &login,
            )
            .map_err(Failure::from)?;
    }
    Ok(image)
}
