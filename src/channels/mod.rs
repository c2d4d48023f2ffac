pub mod sms;
pub mod web;
