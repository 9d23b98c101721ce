//! Networks: the create body and the network as inspect and list show it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::null_default;

/// One network, as `GET /networks/{id}` and `GET /networks` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigFrom,
    pub config_only: bool,
    pub containers: BTreeMap<String, NetworkContainer>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    #[serde(default, deserialize_with = "null_default")]
    pub driver: String,
    /// `null` when none were given, as dockerd sends.
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    /// `null` for `none`/`host`, as dockerd sends.
    #[serde(default)]
    pub config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_default")]
    pub subnet: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_default")]
    pub gateway: String,
    #[serde(rename = "IPRange", default, skip_serializing_if = "String::is_empty", deserialize_with = "null_default")]
    pub ip_range: String,
    /// Name → address, reserved in the subnet.
    #[serde(rename = "AuxiliaryAddresses", default, skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFrom {
    pub network: String,
}

/// A container's endpoint, as network inspect lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// `POST /networks/create` body (tolerant: unknown fields and nulls).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub driver: String,
    #[serde(default, deserialize_with = "null_default")]
    pub scope: String,
    #[serde(default)]
    pub check_duplicate: Option<bool>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub ingress: bool,
    #[serde(default)]
    pub config_only: bool,
    #[serde(default, rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(default, rename = "IPAM")]
    pub ipam: Option<Ipam>,
    #[serde(default, deserialize_with = "null_default")]
    pub options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// `POST /networks/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkPruneResponse {
    /// `null` when nothing was removed, as dockerd sends.
    pub networks_deleted: Option<Vec<String>>,
}

/// `POST /networks/{id}/connect` and `/disconnect` bodies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConnectRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub container: String,
    #[serde(default)]
    pub endpoint_config: Option<serde_json::Value>,
    #[serde(default)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_is_tolerant() {
        let r: NetworkCreateRequest = serde_json::from_str(
            r#"{"Name":"n","Driver":null,"IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.0.0/24"}]},"Options":null,"Whatever":1}"#,
        )
        .unwrap();
        assert_eq!(r.name, "n");
        assert_eq!(r.ipam.unwrap().config.unwrap()[0].subnet, "10.1.0.0/24");
    }

    #[test]
    fn network_has_dockerd_field_names() {
        let v = serde_json::to_value(Network::default()).unwrap();
        for key in ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}
