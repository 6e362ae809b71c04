//! trilo-core: the services that orchestrate protocol decisions, storage, keys and the
//! clock, and the storage traits the backends implement.

pub mod clock;
pub mod code_plan;
pub mod crypto;
pub mod error;
pub mod keys;
pub mod low_s;
pub mod metrics;
pub mod model;
pub mod password_policy;
pub mod ratelimit;
pub mod refresh_plan;
pub mod refresh_token;
pub mod services;
pub mod settings;
pub mod store;

#[cfg(feature = "test-support")]
pub mod testing;

pub use clock::{Clock, MockClock, SystemClock};
pub use error::{CoreError, CoreResult};
pub use services::Core;
pub use settings::Settings;
pub use store::{Store, StoreError, StoreResult};
