//! Docker's operations, version-agnostic and HTTP-free. Services take and
//! return api-types shapes and call backends.

pub mod containers;
pub mod errors;
pub mod images;
pub mod system;

use std::sync::Arc;

pub use errors::ServiceError;

/// Every service, shared by the route handlers.
#[derive(Clone)]
pub struct Services {
    pub system: Arc<system::SystemService>,
    pub images: Arc<images::ImageService>,
    pub containers: Arc<containers::ContainerService>,
}
