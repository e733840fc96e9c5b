//! The services: one per concern, each authorising its caller, validating its input and
//! writing through the store with its audit event. Handlers and server functions only
//! translate between HTTP (or a server function call) and a service method.
//!
//! Dependencies point one way: `http` → `services` → `engine` → `adapters`/`store`.

pub mod access;
pub mod backends;
pub mod campaigns;
pub mod charts;
pub mod editor;
pub mod environments;
pub mod flights;
pub mod gates;
pub mod ports;
pub mod status;

pub use campaigns::CampaignService;
pub use charts::ChartService;
pub use environments::EnvironmentService;
pub use ports::Services;
pub use status::StatusService;
