//! Joining a container to a user-defined network when its task starts: an
//! address, a veth pair into its namespace, the endpoint on record. And
//! `docker network connect`, not served yet for this slice.

use std::net::Ipv4Addr;

use super::{lookup, new_id, Endpoint, NetworkService};
use crate::backends::network::{bridge, ipam};
use crate::services::ServiceError;

impl NetworkService {
    /// `POST /networks/{id}/connect`.
    pub async fn connect(&self, network: &str, _container: &str) -> Result<(), ServiceError> {
        lookup(&*self.networks.lock().await, network)?;
        Err(ServiceError::NotImplemented(
            "connecting a container to a network after it was created is not implemented by berthd yet".into(),
        ))
    }

    /// Make the container's network namespace and join it to `network_id`.
    /// On failure nothing is left behind.
    pub async fn attach_container(
        &self,
        network_id: &str,
        container_id: &str,
        container_name: &str,
    ) -> Result<Endpoint, ServiceError> {
        let netns = self.netns_path(container_id);
        let mut nets = self.networks.lock().await;
        let n = nets.get(network_id).ok_or_else(|| super::network_not_found(network_id))?;
        let (Some(bridge_name), Some(subnet), Some(gateway)) = (n.bridge.clone(), n.subnet.as_deref(), n.gateway.as_deref())
        else {
            return Err(ServiceError::Internal(format!("network {} has no bridge", n.name)));
        };
        let subnet = ipam::Subnet::parse(subnet).ok_or_else(|| ServiceError::Internal(format!("bad subnet {subnet}")))?;
        let gateway: Ipv4Addr = gateway.parse().map_err(|_| ServiceError::Internal(format!("bad gateway {gateway}")))?;
        let used: Vec<Ipv4Addr> = n.endpoints.values().filter_map(|e| e.ip.parse().ok()).collect();
        let ip = ipam::allocate_ip(&subnet, gateway, &used).ok_or_else(|| {
            ServiceError::Unavailable(format!("no available IPv4 addresses on this network's address pools: {} ({})", n.name, n.id))
        })?;
        let endpoint_id = new_id();
        let endpoint = Endpoint {
            container_name: container_name.to_string(),
            host_veth: format!("veth{}", &endpoint_id[..7]),
            endpoint_id,
            ip: ip.to_string(),
            prefix: subnet.prefix,
            gateway: gateway.to_string(),
            mac: ipam::mac_for(ip),
        };
        // The address is on disk before the interface exists: a crash never
        // hands it out twice.
        let mut updated = n.clone();
        updated.endpoints.insert(container_id.to_string(), endpoint.clone());
        self.save(&updated)?;
        let plumbed = async {
            bridge::create_netns(&netns).await?;
            bridge::attach(&bridge::Attachment {
                netns: &netns,
                bridge: &bridge_name,
                host_veth: &endpoint.host_veth,
                ip,
                prefix: subnet.prefix,
                gateway,
                mac: &endpoint.mac,
            })
            .await
        }
        .await;
        if let Err(e) = plumbed {
            let _ = bridge::delete_netns(&netns);
            updated.endpoints.remove(container_id);
            let _ = self.save(&updated);
            nets.insert(updated.id.clone(), updated);
            return Err(ServiceError::Internal(format!(
                "failed to set up container networking: {e}"
            )));
        }
        tracing::info!(container.id = %container_id, network.name = %updated.name, ip = %ip, "endpoint created");
        nets.insert(updated.id.clone(), updated);
        Ok(endpoint)
    }
}
