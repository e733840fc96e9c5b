//! One file per page.

pub mod account;
pub mod admin_users;
pub mod audit;
pub mod campaign;
pub mod campaign_comms;
pub mod campaign_impact;
pub mod campaigns;
pub mod editor;
pub mod environments;
pub mod home;
pub mod login;
pub mod not_found;
