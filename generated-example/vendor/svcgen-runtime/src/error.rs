//! The runtime's error type and its mapping to gRPC status codes: the only place where
//! storage outcomes become `tonic::Status`.

use tonic::{Code, Status};

use crate::entity::MissingKeyField;
use crate::item::DecodeError;
use crate::store::StoreError;

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed; the message is safe to show to the client.
    #[error("{0}")]
    InvalidArgument(String),
    /// No entity with the requested key.
    #[error("{entity} not found")]
    NotFound {
        /// Entity name.
        entity: &'static str,
    },
    /// Create of a key that is taken.
    #[error("{entity} already exists")]
    AlreadyExists {
        /// Entity name.
        entity: &'static str,
    },
    /// Optimistic-locking conflict.
    #[error("{entity} version {expected} is stale (stored: {actual}); read it again and retry")]
    VersionConflict {
        /// Entity name.
        entity: &'static str,
        /// The version the client sent.
        expected: u64,
        /// The stored version.
        actual: u64,
    },
    /// A transaction was cancelled by write `write` (from 1) of `writes`; nothing was written.
    #[error("transaction write {write} of {writes} failed, nothing was written: {cause}")]
    TransactionCanceled {
        /// The failed write, counted from 1 in the order the writes were added.
        write: usize,
        /// The writes of the transaction.
        writes: usize,
        /// Why it failed; its status code is the transaction's.
        cause: Box<Error>,
    },
    /// The backend is overloaded or unreachable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the detail is logged, never sent to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Maps a store outcome for `entity`.
    pub fn from_store(entity: &'static str, error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists => Self::AlreadyExists { entity },
            StoreError::NotFound => Self::NotFound { entity },
            StoreError::VersionConflict { expected, actual } => Self::VersionConflict {
                entity,
                expected,
                actual,
            },
            StoreError::Invalid(message) => Self::InvalidArgument(message),
            StoreError::InvalidStartKey(_) => {
                Self::InvalidArgument(crate::page_token::INVALID.to_owned())
            }
            StoreError::TransactionCanceled {
                index,
                count,
                reason,
            } => Self::TransactionCanceled {
                write: index + 1,
                writes: count,
                cause: Box::new(Self::from_store(entity, *reason)),
            },
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<MissingKeyField> for Error {
    fn from(error: MissingKeyField) -> Self {
        Self::InvalidArgument(error.to_string())
    }
}

impl From<DecodeError> for Error {
    fn from(error: DecodeError) -> Self {
        Self::Internal(format!("stored item does not decode: {error}"))
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::NotFound { .. } => Status::not_found(error.to_string()),
            Error::AlreadyExists { .. } => Status::already_exists(error.to_string()),
            Error::VersionConflict { .. } => Status::aborted(error.to_string()),
            Error::TransactionCanceled {
                write,
                writes,
                cause,
            } => {
                let message = format!(
                    "transaction write {write} of {writes} failed, nothing was written: {cause}"
                );
                // The cause's code; its details stay in the log when it is internal.
                let status = Status::from(*cause);
                match status.code() {
                    Code::Internal | Code::Unavailable => status,
                    code => Status::new(code, message),
                }
            }
            Error::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Status::new(
                    Code::Unavailable,
                    "the store is unavailable; retry with backoff",
                )
            }
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
