//! `netviews` settings.

use serde::Deserialize;

/// Settings of the netviews processor (the `[netviews]` table). Its topics come from
/// topology.yaml.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NetViewsConfig {
    /// The RPC methods that become views. Default: getblockchaininfo, getchaintips,
    /// getmempoolinfo, getblocktemplate, gettxoutsetinfo, getpeerinfo.
    pub methods: Vec<String>,
}

impl Default for NetViewsConfig {
    fn default() -> Self {
        NetViewsConfig { methods: super::logic::METHODS.iter().map(|m| (*m).to_owned()).collect() }
    }
}
