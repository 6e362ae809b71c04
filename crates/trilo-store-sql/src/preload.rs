//! What the stores' bulk loaders (`trilo bench --preload`, feature `test-support` of each
//! store crate) insert in one transaction.

use trilo_core::model::{Account, AuthorizationCode, Grant, Membership, RefreshToken, TokenFamily};

/// Rows to insert in one transaction; each list may be empty. Parents come first in the
/// lists' own order (a grant's account before it, a family's grant before it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Batch<'a> {
    pub accounts: &'a [Account],
    pub memberships: &'a [Membership],
    /// With their sites (`cloud_ids`).
    pub grants: &'a [Grant],
    pub families: &'a [TokenFamily],
    pub refresh_tokens: &'a [RefreshToken],
    pub codes: &'a [AuthorizationCode],
}
