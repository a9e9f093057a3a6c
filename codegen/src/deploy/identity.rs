//! STS: who the credentials belong to, which also proves they work (before any change).

use super::compare::partition;
use super::{AwsError, Clients, InputError};

/// Who the credentials belong to (also proves they work).
pub(super) struct Caller {
    /// The account ID.
    pub(super) account: String,
    /// The partition of every ARN in it: `aws`, `aws-cn` or `aws-us-gov`.
    pub(super) partition: String,
}

/// The caller's account and partition (from its ARN, `arn:PARTITION:…`).
pub(super) async fn caller(aws: &Clients) -> Result<Caller, InputError> {
    let identity = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| InputError::Credentials(AwsError::call("sts:GetCallerIdentity", e)))?;
    let account = identity.account().ok_or(AwsError::Unexpected {
        operation: "sts:GetCallerIdentity",
        returned: "no account",
    })?;
    let partition = identity
        .arn()
        .and_then(partition)
        .ok_or(AwsError::Unexpected {
            operation: "sts:GetCallerIdentity",
            returned: "no ARN of the form arn:PARTITION:…",
        })?;
    Ok(Caller {
        account: account.to_owned(),
        partition: partition.to_owned(),
    })
}
