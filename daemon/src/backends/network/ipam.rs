//! IPv4 address management: subnets from dockerd's default pools, the
//! lowest free address in a subnet, and dockerd's MAC for an address.

use std::net::Ipv4Addr;

/// An IPv4 subnet, `a.b.c.d/n`, kept in its network form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parse `a.b.c.d/n`; host bits are cleared, as dockerd does.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        Some(Self { network: Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.network) & mask(p) == u32::from(other.network) & mask(p)
    }

    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The first host address: dockerd's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
}

/// The default bridge's subnet when `bip` is not set.
pub const DEFAULT_BRIDGE_SUBNET: &str = "172.17.0.0/16";

/// dockerd's default address pools, in order: 172.17.0.0/16 …
/// 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s.
pub fn default_pool_subnets() -> Vec<Subnet> {
    let mut all: Vec<Subnet> =
        (17..=31).map(|b| Subnet { network: Ipv4Addr::new(172, b, 0, 0), prefix: 16 }).collect();
    all.extend((0..16).map(|i| Subnet { network: Ipv4Addr::new(192, 168, i * 16, 0), prefix: 20 }));
    all
}

/// daemon.json's `default-address-pools` (base, size) as subnets, in
/// order; dockerd's pools when there are none.
pub fn pool_subnets(pools: &[(Subnet, u8)]) -> Box<dyn Iterator<Item = Subnet> + Send + '_> {
    if pools.is_empty() {
        return Box::new(default_pool_subnets().into_iter());
    }
    Box::new(pools.iter().flat_map(|(base, size)| {
        let size = (*size).max(base.prefix).min(32);
        let count = 1u64 << (size - base.prefix).min(32);
        let step = 1u64 << (32 - u32::from(size));
        (0..count).map(move |i| Subnet {
            network: Ipv4Addr::from((u64::from(u32::from(base.network)) + i * step) as u32),
            prefix: size,
        })
    }))
}

/// The first pool subnet that overlaps none of `used`.
pub fn allocate_subnet(pools: &[(Subnet, u8)], used: &[Subnet]) -> Option<Subnet> {
    pool_subnets(pools).find(|s| !used.iter().any(|u| u.overlaps(s)))
}

/// The lowest address of `subnet` (of `range` within it, when given:
/// `IPRange`, `fixed-cidr`) that is neither the network, the broadcast,
/// the gateway nor in `used`.
pub fn allocate_ip(subnet: &Subnet, range: Option<&Subnet>, gateway: Ipv4Addr, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let pool = range.unwrap_or(subnet);
    let first = u64::from(u32::from(pool.network));
    let last = first + pool.size() - 1;
    (first..=last)
        .map(|n| Ipv4Addr::from(n as u32))
        .find(|ip| {
            *ip != subnet.network && *ip != gateway && *ip != subnet.broadcast() && subnet.contains(*ip) && !used.contains(ip)
        })
}

/// dockerd's MAC for an address: 02:42 followed by the four octets.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_overlap() {
        let s = Subnet::parse("10.199.3.7/24").unwrap();
        assert_eq!(s.to_string(), "10.199.3.0/24");
        assert!(s.contains("10.199.3.200".parse().unwrap()));
        assert!(!s.contains("10.199.4.1".parse().unwrap()));
        assert!(s.overlaps(&Subnet::parse("10.199.0.0/16").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("10.199.4.0/24").unwrap()));
        assert!(Subnet::parse("10.0.0.0/33").is_none());
        assert!(Subnet::parse("nope").is_none());
    }

    #[test]
    fn subnets_come_from_dockerd_pools_in_order() {
        let bridge = Subnet::parse(DEFAULT_BRIDGE_SUBNET).unwrap();
        assert_eq!(allocate_subnet(&[], &[bridge]).unwrap().to_string(), "172.18.0.0/16");
        let mut used: Vec<Subnet> = default_pool_subnets().into_iter().take(15).collect();
        assert_eq!(allocate_subnet(&[], &used).unwrap().to_string(), "192.168.0.0/20");
        used.push(Subnet::parse("192.168.0.0/24").unwrap());
        assert_eq!(allocate_subnet(&[], &used).unwrap().to_string(), "192.168.16.0/20");
    }

    #[test]
    fn configured_pools_are_cut_in_order() {
        let pools = [(Subnet::parse("10.99.0.0/16").unwrap(), 24), (Subnet::parse("10.98.0.0/30").unwrap(), 30)];
        let first: Vec<String> = pool_subnets(&pools).take(2).map(|s| s.to_string()).collect();
        assert_eq!(first, ["10.99.0.0/24", "10.99.1.0/24"]);
        let used = [Subnet::parse("10.99.0.0/17").unwrap()];
        assert_eq!(allocate_subnet(&pools, &used).unwrap().to_string(), "10.99.128.0/24");
        let used = [Subnet::parse("10.99.0.0/16").unwrap()];
        assert_eq!(allocate_subnet(&pools, &used).unwrap().to_string(), "10.98.0.0/30");
        assert_eq!(allocate_subnet(&pools, &[Subnet::parse("10.0.0.0/8").unwrap()]), None);
    }

    #[test]
    fn lowest_free_address_skips_gateway_and_used() {
        let s = Subnet::parse("10.199.1.0/30").unwrap();
        let gw = s.first_host();
        assert_eq!(gw.to_string(), "10.199.1.1");
        assert_eq!(allocate_ip(&s, None, gw, &[]).unwrap().to_string(), "10.199.1.2");
        assert_eq!(allocate_ip(&s, None, gw, &["10.199.1.2".parse().unwrap()]), None);
        let wide = Subnet::parse("10.199.0.0/16").unwrap();
        let range = Subnet::parse("10.199.5.0/24").unwrap();
        assert_eq!(allocate_ip(&wide, Some(&range), wide.first_host(), &[]).unwrap().to_string(), "10.199.5.0");
    }

    #[test]
    fn mac_follows_the_address() {
        assert_eq!(mac_for("172.18.0.2".parse().unwrap()), "02:42:ac:12:00:02");
    }
}
