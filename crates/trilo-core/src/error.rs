//! The error type of the services. HTTP maps each family to its own response shape.

use trilo_protocol::OAuthError;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A protocol error with its RFC code (token endpoint, token checks).
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// Every failed refresh, whatever the reason (DESIGN §3): unknown, expired, used,
    /// revoked, wrong client. HTTP answers 403 with the reference's exact body.
    #[error("unknown or invalid refresh token")]
    RefreshTokenInvalid,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// Bad input to a management operation; the text is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// Bad input in one field of a form: `field` is the field's name in the form (a page
    /// shows the message beside it), and the message names it in plain words.
    #[error("{message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Forbidden(String),
    /// The store cannot be reached: callers answer 503 and issue nothing.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => CoreError::NotFound("record"),
            StoreError::Conflict { constraint } => CoreError::Conflict(constraint),
            e @ StoreError::Unavailable(_) => CoreError::Unavailable(e),
            StoreError::Corrupt(msg) => {
                CoreError::Internal(anyhow::anyhow!("corrupt store data: {msg}"))
            }
        }
    }
}

impl CoreError {
    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::InvalidField {
            field,
            message: message.into(),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
