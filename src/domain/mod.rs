//! Pure domain logic: no IO, no async. Everything here is unit-tested beside the code.

pub mod address;
pub mod brand;
pub mod calendar;
pub mod consent;
pub mod intent;
pub mod keywords;
pub mod mask;
pub mod provider_id;
pub mod recipient;
pub mod time;

pub use address::Address;
pub use brand::Brand;
pub use consent::{Channel, ConsentType, RecipientType, Source, Status};
pub use intent::{ConsentIntent, Evidence};
pub use provider_id::ProviderMessageId;
pub use recipient::Recipient;
