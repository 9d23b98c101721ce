//! Docker's operations, version-agnostic and HTTP-free. Services take and
//! return api-types shapes and call backends.

pub mod build;
pub mod containers;
pub mod dockerfile;
pub mod errors;
pub mod events;
pub mod images;
pub mod metrics;
pub mod networks;
pub mod system;
pub mod versioned;
pub mod volumes;

use std::sync::Arc;

pub use errors::ServiceError;

/// Every service, shared by the route handlers.
#[derive(Clone)]
pub struct Services {
    pub system: Arc<system::SystemService>,
    pub images: Arc<images::ImageService>,
    pub containers: Arc<containers::ContainerService>,
    pub build: Arc<build::BuildService>,
    pub networks: Arc<networks::NetworkService>,
    pub volumes: Arc<volumes::VolumeService>,
    pub events: events::EventBus,
}
