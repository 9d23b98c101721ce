//! Joining a container to a bridge network when its task starts (or when
//! `docker network connect` adds one to a running container): an address,
//! a veth pair into its namespace, its published ports, the endpoint on
//! record, the `connect` event.

use std::net::{Ipv4Addr, SocketAddr};

use super::ports::{self, PortRequest};
use super::{new_id, Endpoint, EndpointRequest, NetworkService};
use crate::backends::network::{bridge, ipam, proxy};
use crate::services::ServiceError;

/// An endpoint recorded but not yet plumbed, with what plumbing needs.
struct Reserved {
    network_id: String,
    endpoint: Endpoint,
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
    bridge: String,
    mtu: u32,
    bound: Vec<(ports::PortMapping, proxy::Bound)>,
    /// Whether the veth's set-up adds the default route.
    default_route: bool,
    /// The IPv6 address, prefix length and gateway, with IPv6.
    v6: Option<(std::net::Ipv6Addr, u8, std::net::Ipv6Addr)>,
}

impl NetworkService {
    /// A namespace with only loopback (`none`, or the default mode with
    /// `--bridge none`), at the same place as a bridged one so that
    /// `container:` modes can join it.
    pub async fn isolate_container(&self, container_id: &str) -> Result<(), ServiceError> {
        let netns = self.netns_path(container_id);
        if let Err(e) = bridge::create_netns(&netns).await {
            return Err(ServiceError::Internal(format!("failed to set up container networking: {e}")));
        }
        Ok(())
    }

    /// Join the container to `req`'s network and publish `publish`. The
    /// `primary` network makes the namespace (its `eth0` holds the default
    /// route); others add the next free `ethN` to it. On failure nothing is
    /// left behind.
    ///
    /// The address and ports are reserved under the networks' lock, the
    /// namespace and veth are plumbed outside it (a handful of `ip` runs),
    /// then the endpoint is completed under the lock again: parallel starts
    /// do not queue behind one another's plumbing.
    pub async fn attach_container(
        &self,
        req: &EndpointRequest,
        container_id: &str,
        container_name: &str,
        publish: &[PortRequest],
        primary: bool,
    ) -> Result<Endpoint, ServiceError> {
        let r = self.reserve_endpoint(req, container_id, container_name, publish, primary).await?;
        let netns = self.netns_path(container_id);
        let plumbed = async {
            if primary {
                bridge::create_netns(&netns).await?;
            }
            bridge::attach(&bridge::Attachment {
                netns: &netns,
                bridge: &r.bridge,
                host_veth: &r.endpoint.host_veth,
                ip: r.ip,
                prefix: r.endpoint.prefix,
                gateway: r.gateway,
                mac: &r.endpoint.mac,
                mtu: r.mtu,
                ifname: &r.endpoint.ifname,
                default_route: r.default_route,
                ip6: r.v6,
                hairpin: !self.config.userland_proxy,
            })
            .await
        }
        .await
        .map_err(|e| ServiceError::Internal(format!("failed to set up container networking: {e}")));
        let completed = match plumbed {
            Ok(()) => self.complete_endpoint(&r, container_id).await,
            Err(e) => Err(e),
        };
        if let Err(e) = completed {
            drop(r.bound);
            let _ = bridge::delete_link(&r.endpoint.host_veth).await;
            if primary {
                let _ = bridge::delete_netns(&netns);
            }
            self.release_endpoint(&r.network_id, container_id).await;
            return Err(e);
        }
        self.serve_ports(container_id, &r.endpoint, r.bound);
        tracing::info!(container.id = %container_id, network.id = %r.network_id, ip = %r.ip, "endpoint created");
        Ok(r.endpoint)
    }

    /// Under the lock: pick the address, interface name and host ports,
    /// and record the endpoint (on disk before the interface exists, so a
    /// crash never hands the address out twice).
    async fn reserve_endpoint(
        &self,
        req: &EndpointRequest,
        container_id: &str,
        container_name: &str,
        publish: &[PortRequest],
        primary: bool,
    ) -> Result<Reserved, ServiceError> {
        let network_id = req.network_id.as_str();
        let mut nets = self.networks.lock().await;
        let n = nets.get(network_id).ok_or_else(|| super::network_not_found(network_id))?;
        if n.endpoints.contains_key(container_id) {
            return Err(ServiceError::Forbidden(format!(
                "endpoint with name {container_name} already exists in network {}",
                n.name
            )));
        }
        let (Some(bridge_name), Some(subnet), Some(gateway)) = (n.bridge.clone(), n.subnet.as_deref(), n.gateway.as_deref())
        else {
            return Err(ServiceError::Internal(format!("network {} has no bridge", n.name)));
        };
        let subnet = ipam::Subnet::parse(subnet).ok_or_else(|| ServiceError::Internal(format!("bad subnet {subnet}")))?;
        let gateway: Ipv4Addr = gateway.parse().map_err(|_| ServiceError::Internal(format!("bad gateway {gateway}")))?;
        let range = n.ip_range.as_deref().and_then(ipam::Subnet::parse);
        let mtu = super::network_mtu(n, self.config.mtu);
        let mut used: Vec<Ipv4Addr> = n.endpoints.values().filter_map(|e| e.ip.parse().ok()).collect();
        used.extend(n.reserved::<Ipv4Addr>());
        let ip = if req.ipv4_address.is_empty() {
            ipam::allocate_ip(&subnet, range.as_ref(), gateway, &used).ok_or_else(|| {
                ServiceError::Unavailable(format!("no available IPv4 addresses on this network's address pools: {} ({})", n.name, n.id))
            })?
        } else {
            let ip: Ipv4Addr = req
                .ipv4_address
                .parse()
                .map_err(|_| ServiceError::InvalidParameter(format!("invalid IPv4 address: {}", req.ipv4_address)))?;
            if !subnet.contains(ip) {
                return Err(ServiceError::InvalidParameter(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
            if used.contains(&ip) || ip == gateway {
                return Err(ServiceError::Forbidden("Address already in use".into()));
            }
            ip
        };
        let mac = if req.mac_address.is_empty() { ipam::mac_for(ip) } else { req.mac_address.clone() };
        let gateway = n.route_gateway(super::DEFAULT_GATEWAY_V4).unwrap_or(gateway);
        let v6 = n.endpoint_v6(&req.ipv6_address, &mac)?;
        let taken: Vec<&str> =
            nets.values().filter_map(|n| n.endpoints.get(container_id)).map(|e| e.ifname.as_str()).collect();
        let ifname = if primary {
            "eth0".to_string()
        } else {
            (0..).map(|i| format!("eth{i}")).find(|name| !taken.contains(&name.as_str())).unwrap_or_default()
        };
        let endpoint_id = new_id();
        let taken_ports: Vec<ports::PortMapping> =
            nets.values().flat_map(|n| n.endpoints.values()).flat_map(|e| e.ports.clone()).collect();
        let bound = ports::bind_all(publish, &self.config.default_bind_ip, &taken_ports, &self.ephemeral)
            .await
            .and_then(|mut bound| {
                // With the proxy, an IPv4-only container's ports are on
                // `[::]` too, forwarded to its IPv4 address, as dockerd's
                // docker-proxy; hairpin NAT cannot do that.
                let proxied_6to4 = v6.is_none() && self.config.userland_proxy && proxy::ipv6_listenable();
                if v6.is_some() || proxied_6to4 {
                    let twins = ports::bind_v6_twins(&bound)?;
                    bound.extend(twins);
                }
                Ok(bound)
            })
            .map_err(|e| {
                ServiceError::Internal(format!(
                    "driver failed programming external connectivity on endpoint {container_name} ({endpoint_id}): {e}"
                ))
            })?;
        let endpoint = Endpoint {
            container_name: container_name.to_string(),
            host_veth: format!("veth{}", &endpoint_id[..7]),
            endpoint_id,
            ip: ip.to_string(),
            prefix: subnet.prefix,
            gateway: gateway.to_string(),
            mac,
            ports: bound.iter().map(|(m, _)| m.clone()).collect(),
            dns_names: Vec::new(),
            aliases: req.aliases.clone(),
            ifname,
            gw_priority: req.gw_priority,
            ip6: v6.map(|(ip, _, _)| ip.to_string()).unwrap_or_default(),
            prefix6: v6.map(|(_, prefix, _)| prefix).unwrap_or(0),
            gateway6: v6.map(|(_, _, gw)| gw.to_string()).unwrap_or_default(),
            links: Vec::new(),
        };
        let mut updated = n.clone();
        updated.endpoints.insert(container_id.to_string(), endpoint.clone());
        self.save(&updated)?;
        nets.insert(updated.id.clone(), updated);
        // A fresh namespace whose only way out is this network gets its
        // default route with the address, saving a separate `ip` run.
        let default_route = primary && {
            let (gw4, gw6) = super::gateway_endpoints(&nets, container_id);
            let this = |e: Option<&Endpoint>| e.is_some_and(|e| e.endpoint_id == endpoint.endpoint_id);
            this(gw4) && (gw6.is_none() || this(gw6))
        };
        Ok(Reserved { network_id: network_id.to_string(), endpoint, ip, gateway, bridge: bridge_name, mtu, bound, default_route, v6 })
    }

    /// Under the lock again, once the interface is up: the default route
    /// (when the set-up did not add it: a connect may move it), the
    /// firewall, the DNS names and the `connect` event.
    async fn complete_endpoint(&self, r: &Reserved, container_id: &str) -> Result<(), ServiceError> {
        let nets = self.networks.lock().await;
        let Some(n) = nets.get(&r.network_id).filter(|n| n.endpoints.contains_key(container_id)) else {
            return Err(ServiceError::Conflict(format!("container {container_id} left the network while it was joining")));
        };
        if !r.default_route {
            self.route_default(&nets, container_id).await?;
        }
        self.sync_firewall(&nets).await?;
        self.names.refresh(&nets);
        self.emit("connect", n, Some(container_id));
        Ok(())
    }

    /// Take a reservation back after a failed join.
    async fn release_endpoint(&self, network_id: &str, container_id: &str) {
        let mut nets = self.networks.lock().await;
        let Some(n) = nets.get_mut(network_id) else { return };
        if n.endpoints.remove(container_id).is_some() {
            let n = n.clone();
            let _ = self.save(&n);
            let _ = self.sync_firewall(&nets).await;
            self.names.refresh(&nets);
        }
    }

    /// Forward bound host ports to the container's address.
    fn serve_ports(&self, container_id: &str, e: &Endpoint, bound: Vec<(ports::PortMapping, proxy::Bound)>) {
        let Ok(ip) = e.ip.parse::<Ipv4Addr>() else { return };
        let ip6 = e.ip6.parse::<std::net::Ipv6Addr>().ok();
        let tasks: Vec<_> = bound
            .into_iter()
            .map(|(m, b)| match self.config.userland_proxy {
                // `[::]` ports go to the container's IPv6 address.
                true => {
                    let target = match (m.host_ip.parse::<std::net::IpAddr>(), ip6) {
                        (Ok(std::net::IpAddr::V6(_)), Some(ip6)) => std::net::IpAddr::V6(ip6),
                        _ => ip.into(),
                    };
                    proxy::serve(b, SocketAddr::new(target, m.container_port))
                }
                // `[::1]` cannot be DNATed (IPv6 has no route_localnet):
                // the `[::]` socket serves what reaches it, loopback only,
                // since NAT takes every other address first.
                false => match (m.host_ip.parse::<std::net::IpAddr>(), ip6) {
                    (Ok(std::net::IpAddr::V6(host)), Some(ip6)) if host.is_unspecified() || host.is_loopback() => {
                        proxy::serve(b, SocketAddr::new(std::net::IpAddr::V6(ip6), m.container_port))
                    }
                    // Hairpin NAT carries the traffic; the socket only holds the port.
                    _ => proxy::hold(b),
                },
            })
            .collect();
        if !tasks.is_empty() {
            self.proxies.lock().unwrap_or_else(|e| e.into_inner()).entry(container_id.to_string()).or_default().extend(tasks);
        }
    }

    /// At start: serve again the ports of endpoints that outlived the last
    /// run (live-restore); the firewall rules follow from the records.
    pub(super) async fn restore_ports(&self) {
        let nets = self.networks.lock().await;
        for n in nets.values() {
            for (container_id, e) in &n.endpoints {
                for m in &e.ports {
                    let Ok(host_ip) = m.host_ip.parse::<std::net::IpAddr>() else { continue };
                    let addr = SocketAddr::new(host_ip, m.host_port);
                    // `[::]` beside `0.0.0.0`: IPv6 only, as first bound.
                    let bound = if host_ip.is_ipv6() && host_ip.is_unspecified() {
                        proxy::bind_v6only(&m.proto, addr)
                    } else {
                        proxy::bind(&m.proto, addr).await
                    };
                    match bound {
                        Ok(b) => self.serve_ports(container_id, e, vec![(m.clone(), b)]),
                        Err(err) => tracing::warn!(container.id = %container_id, port = m.host_port, error = %err, "cannot restore a published port"),
                    }
                }
            }
        }
    }
}
