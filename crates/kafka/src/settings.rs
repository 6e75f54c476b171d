//! Client settings shared by every bmon producer, consumer and admin client.

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// How to authenticate to the brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case", deny_unknown_fields)]
pub enum Security {
    /// No TLS, no SASL (loopback test beds, private networks).
    #[default]
    Plaintext,
    /// TLS, optionally verifying against a CA bundle and presenting a client certificate.
    Ssl {
        /// CA bundle (PEM).
        #[serde(default)]
        ca_location: Option<PathBuf>,
        /// Client certificate (PEM), for mutual TLS.
        #[serde(default)]
        certificate_location: Option<PathBuf>,
        /// Client key (PEM), for mutual TLS.
        #[serde(default)]
        key_location: Option<PathBuf>,
    },
    /// SASL over TLS. The password is read from a file, never from the command line.
    SaslSsl {
        /// SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN.
        mechanism: String,
        /// SASL user name.
        username: String,
        /// File holding the password.
        password_file: PathBuf,
        /// CA bundle (PEM).
        #[serde(default)]
        ca_location: Option<PathBuf>,
    },
}

/// Broker list, identity and security for one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// `client.id` reported to the brokers.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Security settings.
    #[serde(default)]
    pub security: Security,
    /// Extra librdkafka properties for every client, applied after bmon's own.
    #[serde(default)]
    pub librdkafka: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka properties for producers only (e.g. `linger.ms`), applied last.
    #[serde(default)]
    pub producer: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka properties for consumers only (e.g. `fetch.wait.max.ms`), applied last.
    #[serde(default)]
    pub consumer: std::collections::BTreeMap<String, String>,
}

fn default_client_id() -> String {
    "bmon".to_owned()
}

impl ClientSettings {
    /// Plaintext settings for `brokers`.
    pub fn plaintext(brokers: impl Into<String>) -> Self {
        ClientSettings {
            brokers: brokers.into(),
            client_id: default_client_id(),
            security: Security::Plaintext,
            librdkafka: Default::default(),
            producer: Default::default(),
            consumer: Default::default(),
        }
    }

    /// The rdkafka configuration for these settings. Reads the SASL password file, if any.
    pub fn client_config(&self) -> std::io::Result<ClientConfig> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            // Fail requests rather than hang when the cluster is gone.
            .set("socket.timeout.ms", "10000")
            .set("broker.address.family", "any");
        match &self.security {
            Security::Plaintext => {
                c.set("security.protocol", "plaintext");
            }
            Security::Ssl { ca_location, certificate_location, key_location } => {
                c.set("security.protocol", "ssl");
                set_path(&mut c, "ssl.ca.location", ca_location);
                set_path(&mut c, "ssl.certificate.location", certificate_location);
                set_path(&mut c, "ssl.key.location", key_location);
            }
            Security::SaslSsl { mechanism, username, password_file, ca_location } => {
                let password = std::fs::read_to_string(password_file)?;
                c.set("security.protocol", "sasl_ssl")
                    .set("sasl.mechanism", mechanism)
                    .set("sasl.username", username)
                    .set("sasl.password", password.trim_end());
                set_path(&mut c, "ssl.ca.location", ca_location);
            }
        }
        Ok(c)
    }

    /// A producer configuration: acknowledged by all in-sync replicas, lz4-compressed (snappy is
    /// avoided: some Kafka-protocol brokers cannot serve it back), with a 1 ms linger: every
    /// stage of the pipeline lingers once, and under load librdkafka batches anyway while
    /// earlier requests are in flight (5 ms cost 9–17 ms at p50 end to end, see BENCHMARKS.md).
    pub fn producer_config(&self) -> std::io::Result<ClientConfig> {
        let mut c = self.client_config()?;
        // The largest record any topic takes (`bmon.node.rpc` in topology.yaml: a mainnet
        // mempool snapshot is megabytes); librdkafka's default refuses anything over 1 MB.
        c.set("message.max.bytes", "16777216");
        c.set("acks", "all").set("compression.type", "lz4").set("linger.ms", "1").set("message.timeout.ms", "30000");
        self.apply_extra(&mut c, &self.producer);
        Ok(c)
    }

    /// A consumer configuration for `group`, with offsets committed only when bmon stores them
    /// (after the outputs for a record are acknowledged) and cooperative-sticky assignment.
    pub fn consumer_config(&self, group: &str, session_timeout: Duration) -> std::io::Result<ClientConfig> {
        let mut c = self.client_config()?;
        c.set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", session_timeout.as_millis().to_string());
        self.apply_extra(&mut c, &self.consumer);
        Ok(c)
    }
}

impl ClientSettings {
    /// Applies the properties for every client, then `role`'s own.
    fn apply_extra(&self, c: &mut ClientConfig, role: &std::collections::BTreeMap<String, String>) {
        for (k, v) in self.librdkafka.iter().chain(role) {
            c.set(k, v);
        }
    }
}

fn set_path(c: &mut ClientConfig, key: &str, path: &Option<PathBuf>) {
    if let Some(p) = path {
        c.set(key, p.to_string_lossy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_password_comes_from_file_and_is_trimmed() {
        let dir = std::env::temp_dir().join(format!("bmon-kafka-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let s = ClientSettings {
            brokers: "b:9092".into(),
            client_id: "x".into(),
            security: Security::SaslSsl {
                mechanism: "SCRAM-SHA-256".into(),
                username: "u".into(),
                password_file: pw,
                ca_location: None,
            },
            ..ClientSettings::plaintext("b:9092")
        };
        let c = s.client_config().unwrap();
        assert_eq!(c.get("sasl.password"), Some("s3cret"));
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_password_file_is_an_error() {
        let s = ClientSettings {
            brokers: "b:9092".into(),
            client_id: "x".into(),
            security: Security::SaslSsl {
                mechanism: "PLAIN".into(),
                username: "u".into(),
                password_file: "/nonexistent/pw".into(),
                ca_location: None,
            },
            ..ClientSettings::plaintext("b:9092")
        };
        assert!(s.client_config().is_err());
    }

    #[test]
    fn consumer_stores_offsets_manually_with_cooperative_sticky() {
        let c = ClientSettings::plaintext("b:1").consumer_config("g", Duration::from_secs(6)).unwrap();
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("partition.assignment.strategy"), Some("cooperative-sticky"));
        assert_eq!(c.get("session.timeout.ms"), Some("6000"));
    }

    #[test]
    fn role_properties_apply_to_their_role_only_and_last() {
        let s: ClientSettings = toml::from_str(
            "brokers = \"b:1\"\nlibrdkafka = { \"linger.ms\" = \"7\", \"client.rack\" = \"r1\" }\n\
             producer = { \"linger.ms\" = \"1\" }\nconsumer = { \"fetch.wait.max.ms\" = \"2\" }\n",
        )
        .unwrap();
        let p = s.producer_config().unwrap();
        assert_eq!(p.get("linger.ms"), Some("1"));
        assert_eq!(p.get("client.rack"), Some("r1"));
        assert_eq!(p.get("fetch.wait.max.ms"), None);
        let c = s.consumer_config("g", Duration::from_secs(6)).unwrap();
        assert_eq!(c.get("fetch.wait.max.ms"), Some("2"));
        assert_eq!(c.get("client.rack"), Some("r1"));
        assert_eq!(c.get("linger.ms"), Some("7"));
    }
}
