//! IPv6 address management: subnets, the lowest free address (user
//! networks, as dockerd's IPAM), and the address built from a MAC (the
//! default bridge with `fixed-cidr-v6`, as dockerd's bridge driver).

use std::net::Ipv6Addr;

/// An IPv6 subnet, `prefix/len`, kept in its network form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet6 {
    pub network: Ipv6Addr,
    pub prefix: u8,
}

fn mask(prefix: u8) -> u128 {
    if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) }
}

impl Subnet6 {
    /// Parse `addr/len`; host bits are cleared, as dockerd does.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: Ipv6Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 128 {
            return None;
        }
        Some(Self { network: Ipv6Addr::from(u128::from(addr) & mask(prefix)), prefix })
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask(self.prefix) == u128::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let p = self.prefix.min(other.prefix);
        u128::from(self.network) & mask(p) == u128::from(other.network) & mask(p)
    }

    /// The first host address: dockerd's default gateway.
    pub fn first_host(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) + 1)
    }

    fn last(&self) -> u128 {
        u128::from(self.network) | !mask(self.prefix)
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// dockerd 28's IPv6 pool when `default-address-pools` has none: a ULA
/// /48 whose 40-bit global ID comes from the engine ID (the first eight
/// bytes of its SHA-256, low 40 bits), cut into /64s. Stable per host.
pub fn ula_pool(host_id: &str) -> (Subnet6, u8) {
    use sha2::Digest;
    let sha = sha2::Sha256::digest(host_id.as_bytes());
    let first: [u8; 8] = sha[..8].try_into().unwrap_or_default();
    let gid = u64::from_be_bytes(first) & ((1 << 40) - 1);
    let base = u128::from(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)) + (u128::from(gid) << 80);
    (Subnet6 { network: Ipv6Addr::from(base), prefix: 48 }, 64)
}

/// `default-address-pools` entries with an IPv6 base, cut into `size`
/// subnets in order; the first that overlaps none of `used`.
pub fn allocate_subnet(pools: &[(Subnet6, u8)], used: &[Subnet6]) -> Option<Subnet6> {
    pools.iter().find_map(|(base, size)| {
        let size = (*size).clamp(base.prefix, 128);
        let bits = u32::from(size - base.prefix);
        // More than 2^20 candidates: look at the first ones only, which
        // is plenty for networks on one host.
        let count = if bits >= 20 { 1u128 << 20 } else { 1u128 << bits };
        let step = if size == 128 { 1 } else { 1u128 << (128 - u32::from(size)) };
        (0..count)
            .map(|i| Subnet6 { network: Ipv6Addr::from(u128::from(base.network) + i * step), prefix: size })
            .find(|s| !used.iter().any(|u| u.overlaps(s)))
    })
}

/// The lowest address of `subnet` (of `range` within it) that is neither
/// the subnet-router anycast address, the gateway, nor in `used` (which
/// holds the auxiliary addresses too).
pub fn allocate_ip(subnet: &Subnet6, range: Option<&Subnet6>, gateway: Ipv6Addr, used: &[Ipv6Addr]) -> Option<Ipv6Addr> {
    let pool = range.unwrap_or(subnet);
    let first = u128::from(pool.network);
    // Bounded: a /64 has more addresses than anyone will ever walk.
    let last = pool.last().min(first.saturating_add(1 << 24));
    (first..=last)
        .map(Ipv6Addr::from)
        .find(|ip| *ip != subnet.network && *ip != gateway && subnet.contains(*ip) && !used.contains(ip))
}

/// dockerd's address on the default bridge: the subnet's prefix with the
/// MAC in the last six bytes; `None` when the subnet has fewer than 48
/// host bits.
pub fn from_mac(subnet: &Subnet6, mac: &str) -> Option<Ipv6Addr> {
    if subnet.prefix > 80 {
        return None;
    }
    let bytes: Vec<u8> = mac.split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
    if bytes.len() != 6 {
        return None;
    }
    let mut octets = subnet.network.octets();
    octets[10..].copy_from_slice(&bytes);
    Some(Ipv6Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_contains_overlaps() {
        let s = Subnet6::parse("fd00:1::7/64").unwrap();
        assert_eq!(s.to_string(), "fd00:1::/64");
        assert!(s.contains("fd00:1::ffff".parse().unwrap()));
        assert!(!s.contains("fd00:2::1".parse().unwrap()));
        assert!(s.overlaps(&Subnet6::parse("fd00::/16").unwrap()));
        assert!(Subnet6::parse("fd00::/129").is_none());
        assert!(Subnet6::parse("10.0.0.0/8").is_none());
    }

    #[test]
    fn lowest_free_address() {
        let s = Subnet6::parse("fd00:1::/64").unwrap();
        let gw = s.first_host();
        assert_eq!(allocate_ip(&s, None, gw, &[]).unwrap().to_string(), "fd00:1::2");
        let used = ["fd00:1::2".parse().unwrap(), "fd00:1::3".parse().unwrap()];
        assert_eq!(allocate_ip(&s, None, gw, &used).unwrap().to_string(), "fd00:1::4");
        let tiny = Subnet6::parse("fd00:1::/127").unwrap();
        assert_eq!(allocate_ip(&tiny, None, tiny.first_host(), &[]), None);
    }

    #[test]
    fn pools_and_mac_addresses() {
        let pools = [(Subnet6::parse("fd10::/56").unwrap(), 64)];
        let used = [Subnet6::parse("fd10::/64").unwrap()];
        assert_eq!(allocate_subnet(&pools, &used).unwrap().to_string(), "fd10:0:0:1::/64");
        let s = Subnet6::parse("fd00:dead:beef::/64").unwrap();
        assert_eq!(from_mac(&s, "02:42:ac:11:00:02").unwrap().to_string(), "fd00:dead:beef::242:ac11:2");
        assert_eq!(from_mac(&Subnet6::parse("fd00::/96").unwrap(), "02:42:ac:11:00:02"), None);
    }

    #[test]
    fn ula_pool_from_the_engine_id() {
        // sha256("") = e3b0c44298fc1c14…: low 40 bits of the first eight
        // bytes are 98fc1c14 preceded by 42.
        let (base, size) = ula_pool("");
        assert_eq!((base.to_string(), size), ("fd42:98fc:1c14::/48".to_string(), 64));
        assert_ne!(ula_pool("a").0, ula_pool("b").0);
    }
}
